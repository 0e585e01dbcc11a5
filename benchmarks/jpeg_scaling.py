"""What reduced-size JPEG decoding (photo decoding `jpeg-scaled-v1`) changes, on real photos: the image
vectors, the quality measures, and the time to decode, measure and preprocess one photo.

    python benchmarks/jpeg_scaling.py ../shared/data/real/celeb_dump_200      # a folder of JPEGs (recursive)
    python benchmarks/jpeg_scaling.py photos/ --limit 50 --repeat 3

Each photo is decoded twice: in full (photo decoding "full", what every model trained before it uses) and
as `jpeg-scaled-v1` decodes it for the EfficientNet-Lite0 embedder (the smallest libjpeg scale, 1/2, 1/4 or
1/8, whose shortest side is still >= 224 px and longest side >= 512 px). Both decodes are measured by
quality-v2 and embedded by EfficientNet-Lite0 (ONNX Runtime on this CPU). Prints one JSON object: how many
photos were decoded at each scale; the cosine similarity of each photo's two vectors (min, 1st and 5th
percentile, median); per quality column the median and largest absolute difference (and, for sharpness, the
median relative one); and per step (decode, quality, preprocess) the median milliseconds per photo of the
two decodes, each the fastest of `--repeat` timings (one process, one photo at a time). The photos are only
read; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _fastest(repeat: int, call: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - started)
    return best * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a folder of JPEG photos (searched recursively)")
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per step and photo (fastest counts)")
    parser.add_argument("--onnx-dir", default=None, help="ONNX export folder (default: a temp dir)")
    args = parser.parse_args()

    import tempfile

    import torch

    from engage.embed.decoding import FULL_DECODING, PhotoDecoding, decode_photo
    from engage.embed.image import EfficientNetEmbedder
    from engage.features.quality import ANALYSIS_SIDE, QUALITY_COLUMNS, image_quality

    paths = sorted(p for p in Path(args.folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        raise SystemExit(f"no JPEG under {args.folder}")
    embedder = EfficientNetEmbedder(device="cpu", num_workers=0,
                                    onnx_dir=args.onnx_dir or tempfile.mkdtemp(prefix="jpeg-scaling-onnx-"))
    scaled = PhotoDecoding("jpeg-scaled-v1", shortest=embedder.input_size, longest=ANALYSIS_SIDE)
    ways = {"full": FULL_DECODING, "jpeg-scaled-v1": scaled}
    ms: dict[str, dict[str, list[float]]] = {w: {"decode": [], "quality": [], "preprocess": []} for w in ways}
    quality: dict[str, list[np.ndarray]] = {w: [] for w in ways}
    pixels: dict[str, list[torch.Tensor]] = {w: [] for w in ways}
    scales: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for path in paths:
        data = path.read_bytes()
        for way, decoding in ways.items():
            t, (image, size) = _fastest(args.repeat, lambda d=decoding, b=data: decode_photo(b, decoding=d))
            ms[way]["decode"].append(t)
            t, measures = _fastest(args.repeat, lambda i=image, s=size: image_quality(i, size=s))
            ms[way]["quality"].append(t)
            quality[way].append(np.array([measures[c] for c in QUALITY_COLUMNS], dtype=np.float64))
            t, tensor = _fastest(args.repeat, lambda i=image: embedder.preprocess(i))
            ms[way]["preprocess"].append(t)
            pixels[way].append(tensor)
            if way != "full":
                scale = f"1/{decoding.scale(*size)}"
                scales[scale] = scales.get(scale, 0) + 1
                sizes[f"{size[0]}x{size[1]}"] = sizes.get(f"{size[0]}x{size[1]}", 0) + 1
    vectors = {way: np.concatenate([embedder.encode_pixels(torch.stack(p[i:i + 16])).numpy()
                                    for i in range(0, len(p), 16)]) for way, p in pixels.items()}
    cosine = np.sum(vectors["full"] * vectors["jpeg-scaled-v1"], axis=1)
    full_q, scaled_q = np.stack(quality["full"]), np.stack(quality["jpeg-scaled-v1"])
    difference = np.abs(scaled_q - full_q)
    columns: dict[str, Any] = {}
    for j, name in enumerate(QUALITY_COLUMNS):
        columns[name] = {"median_abs_diff": round(float(np.median(difference[:, j])), 5),
                         "max_abs_diff": round(float(difference[:, j].max()), 5),
                         "median_full": round(float(np.median(full_q[:, j])), 5)}
    sharp = scaled_q[:, 0] / np.maximum(full_q[:, 0], 1e-9) - 1
    columns["sharpness"]["median_relative_diff"] = round(float(np.median(sharp)), 4)
    columns["sharpness"]["relative_diff_p5_p95"] = [round(float(np.percentile(sharp, 5)), 4),
                                                    round(float(np.percentile(sharp, 95)), 4)]
    rank_full = np.argsort(np.argsort(full_q[:, 0]))
    rank_scaled = np.argsort(np.argsort(scaled_q[:, 0]))
    spearman = float(np.corrcoef(rank_full, rank_scaled)[0, 1])
    columns["sharpness"]["spearman_full_vs_scaled"] = round(spearman, 4)
    timing = {way: {step: round(float(np.median(v)), 2) for step, v in steps.items()}
              for way, steps in ms.items()}
    for way in timing:
        timing[way]["total"] = round(float(np.median(np.sum([ms[way][s] for s in ms[way]], axis=0))), 2)
    print(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "photos": len(paths), "photo_sizes_top": dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:8]),
        "scales": scales,
        "cosine_full_vs_scaled": {"min": round(float(cosine.min()), 5),
                                  "p1": round(float(np.percentile(cosine, 1)), 5),
                                  "p5": round(float(np.percentile(cosine, 5)), 5),
                                  "median": round(float(np.median(cosine)), 5)},
        "quality_differences": columns,
        "ms_per_photo_median": timing,
        "load_avg": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()
