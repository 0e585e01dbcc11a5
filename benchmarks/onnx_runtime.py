"""ONNX Runtime against PyTorch for the offline CPU embedders (EfficientNet-Lite0, MiniLM), in one run.

    python benchmarks/onnx_runtime.py                          # the smoke demo's photos and captions
    python benchmarks/onnx_runtime.py --config configs/default.yaml --repeats 7

For each model it times, at batch 1 and batch 16, three ways of computing the same vectors:

  (a) PyTorch, as engage ran before (`runtime="torch"`: channels-last, denormals flushed for EfficientNet;
      sentence-transformers' `encode` for MiniLM);
  (b) ONNX Runtime fp32 on the graph `engage.embed.runtime` exports (`runtime="onnxruntime"`);
  (c) ONNX Runtime int8: (b) dynamically quantised by `onnxruntime.quantization.quantize_dynamic`.

Photos are the demo's (decoded and preprocessed once, so only the model is timed); captions are the demo's,
tokenised inside each call (as scoring does). Every batch size and way is timed in turn within each of
`--repeats` rounds, so load from other work on the machine falls on all of them alike; the median seconds
per batch is reported, with the speed-up over PyTorch and the cosine of each way's vectors with PyTorch's
over all the photos / captions (min and mean). A way is adopted when it is >= 1.5x faster at both batch
sizes and its minimum cosine is >= 0.999 (`at_least_1.5x_at_both_batch_sizes`); engage adopts it (`adopt`)
when it gives the same vectors, is >= 1.5x faster at one batch size and no slower at the other: one runtime
for training (large batches) and serving (single drafts) alike. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Before torch loads: idle OpenMP threads sleep, as in engage and serve.py (a shared machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 16)
MIN_SPEEDUP, MIN_COSINE = 1.5, 0.999


def cosines(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    dots = np.einsum("ij,ij->i", reference, other) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(other, axis=1))
    return {"min": round(float(dots.min()), 6), "mean": round(float(dots.mean()), 6)}


def int8_session(exported: Path, out_dir: Path) -> Any:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from engage.embed.runtime import _session

    target = out_dir / f"{exported.stem}.int8.onnx"
    quantize_dynamic(str(exported), str(target), weight_type=QuantType.QInt8)
    return _session(str(target), max(1, torch.get_num_threads()))


def time_ways(ways: dict[str, Callable[[int], Any]], repeats: int) -> dict[str, dict[int, float]]:
    """Median seconds of `way(batch)` per batch size; ways and batch sizes interleaved within each round."""
    for way in ways.values():  # warm-up: sessions built, exports written, caches filled
        for batch in BATCHES:
            way(batch)
    seconds: dict[str, dict[int, list[float]]] = {name: {b: [] for b in BATCHES} for name in ways}
    for _ in range(repeats):
        for batch in BATCHES:
            for name, way in ways.items():
                started = time.perf_counter()
                way(batch)
                seconds[name][batch].append(time.perf_counter() - started)
    return {name: {b: float(np.median(v)) for b, v in per.items()} for name, per in seconds.items()}


def report(times: dict[str, dict[int, float]], agreement: dict[str, dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, per in times.items():
        entry: dict[str, Any] = {f"batch_{b}_ms": round(s * 1000, 1) for b, s in per.items()}
        if name != "torch":
            speedups = {b: times["torch"][b] / s for b, s in per.items()}
            entry.update({f"batch_{b}_speedup": round(x, 2) for b, x in speedups.items()})
            entry["cosine_with_torch"] = agreement[name]
            same = agreement[name]["min"] >= MIN_COSINE
            entry["at_least_1.5x_at_both_batch_sizes"] = bool(same and min(speedups.values()) >= MIN_SPEEDUP)
            entry["adopt"] = bool(same and max(speedups.values()) >= MIN_SPEEDUP
                                  and min(speedups.values()) >= 1.0)
        out[name] = entry
    return out


def image_benchmark(paths: list[str], onnx_dir: Path, repeats: int) -> dict[str, Any]:
    from engage.embed.decoding import open_image
    from engage.embed.image import EfficientNetEmbedder

    torch_way = EfficientNetEmbedder(device="cpu", runtime="torch")
    onnx_way = EfficientNetEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=onnx_dir)
    pixels = torch.stack([torch_way.preprocess(open_image(p)) for p in paths])
    reference = torch_way.encode_pixels(pixels).numpy()
    fp32 = onnx_way.encode_pixels(pixels).numpy()
    int8_way = EfficientNetEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=onnx_dir)
    int8_way._session = int8_session(next(onnx_dir.glob("efficientnet-lite0-*.onnx")), onnx_dir)
    int8 = int8_way.encode_pixels(pixels).numpy()
    agreement = {"onnxruntime_fp32": cosines(reference, fp32), "onnxruntime_int8": cosines(reference, int8)}
    times = time_ways({"torch": lambda b: torch_way.encode_pixels(pixels[:b]),
                       "onnxruntime_fp32": lambda b: onnx_way.encode_pixels(pixels[:b]),
                       "onnxruntime_int8": lambda b: int8_way.encode_pixels(pixels[:b])}, repeats)
    return {"model": torch_way.id, "photos": len(paths), **report(times, agreement)}


def text_benchmark(captions: list[str], onnx_dir: Path, repeats: int) -> dict[str, Any]:
    from engage.embed.text import MiniLMEmbedder

    torch_way = MiniLMEmbedder(device="cpu", runtime="torch")
    onnx_way = MiniLMEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=onnx_dir)
    reference = torch_way.embed(captions)
    fp32 = onnx_way.embed(captions)
    int8_way = MiniLMEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=onnx_dir)
    int8_way._session = int8_session(next(onnx_dir.glob("minilm-l6-v2-*.onnx")), onnx_dir)
    int8 = int8_way.embed(captions)
    agreement = {"onnxruntime_fp32": cosines(reference, fp32), "onnxruntime_int8": cosines(reference, int8)}
    # Each call embeds the next `b` captions, so batch 1 is not always the same (cached-looking) caption.
    cursor = {"torch": 0, "onnxruntime_fp32": 0, "onnxruntime_int8": 0}

    def way(name: str, embedder: MiniLMEmbedder) -> Callable[[int], Any]:
        def call(batch: int) -> Any:
            start = cursor[name] % max(1, len(captions) - batch)
            cursor[name] += batch
            return embedder.embed(captions[start:start + batch])
        return call

    times = time_ways({"torch": way("torch", torch_way),
                       "onnxruntime_fp32": way("onnxruntime_fp32", onnx_way),
                       "onnxruntime_int8": way("onnxruntime_int8", int8_way)}, repeats)
    return {"model": torch_way.id, "captions": len(captions), **report(times, agreement)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "smoke.yaml"),
                        help="config whose demo data to use")
    parser.add_argument("--photos", type=int, default=48, help="demo photos compared and timed (default 48)")
    parser.add_argument("--captions", type=int, default=256,
                        help="demo captions compared and timed (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    args = parser.parse_args()

    from engage.config import load_settings
    from engage.training import load_training_posts

    posts = load_training_posts(load_settings(args.config))
    paths = [p for p in posts["image"].tolist() if isinstance(p, str) and p][: args.photos]
    captions = posts["caption"].tolist()[: args.captions]
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(),
                    "load_avg_start": os.getloadavg(), "omp_wait_policy": os.environ["OMP_WAIT_POLICY"]},
        "criteria": f"same vectors: min cosine >= {MIN_COSINE}; "
        f"adopt: >= {MIN_SPEEDUP}x faster at batch 1 or 16 and "
                    "not slower at the other",
    }
    with tempfile.TemporaryDirectory(prefix="onnx-bench-") as onnx_dir:
        result["efficientnet"] = image_benchmark(paths, Path(onnx_dir), args.repeats)
        result["minilm"] = text_benchmark(captions, Path(onnx_dir), args.repeats)
    result["machine"]["load_avg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
