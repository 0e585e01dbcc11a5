"""Image embedding throughput: the JPEG fast path against the plain PIL DataLoader path, in one run.

    python benchmarks/embed_throughput.py                        # ViT-B-32 (random weights), N=64, CPU or
    CUDA python benchmarks/embed_throughput.py --n 4096 --batch-size 256 --workers 16   # a GPU machine python
    benchmarks/embed_throughput.py --model efficientnet   # the offline EfficientNet-Lite0 backend

It builds N deterministic 1080x1080 JPEGs in memory (scikit-image sample photos, each shifted, scaled,
tinted and lightly noised differently), then times

  (a) fast path: `embed_jpeg_bytes` — bytes -> torchvision decode_jpeg (nvJPEG on CUDA) -> resize and
      normalise on the device -> model (bf16 autocast on CUDA, float32 on CPU);
  (b) PIL path: `embedder.embed_paths` — the same JPEGs as files, PIL decode + the model's own preprocess
      in `--workers` DataLoader processes -> model.

Random weights are fine for a speed measurement (same FLOPs) and keep the script offline; the JSON says
so. The model alone on ready-made pixels is timed too, as the ceiling both paths approach. Each path
gets one warm-up batch first; then `--repeats` rounds each time all N images through every path in turn
(including worker start-up for (b)) and the median is reported, with the machine's load average, since a
shared machine makes CPU figures noisy. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from engage.embed.image import EfficientNetEmbedder, OpenClipEmbedder
from engage.embed.jpeg import embed_jpeg_bytes

SIDE = 1080  # Instagram's square post size
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "immunohistochemistry", "hubble_deep_field")


def make_jpegs(n: int, seed: int = 0, threads: int = 8) -> list[bytes]:
    """N distinct, deterministic 1080x1080 JPEGs (~photo-like content, so decode cost is realistic)."""
    bases = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in PHOTOS]

    def one(i: int) -> bytes:
        rng = np.random.default_rng(seed + i)
        base = bases[i % len(bases)]
        scale = rng.uniform(1.0, 1.6)
        side = int(min(base.size) / scale)
        left = int(rng.integers(0, base.width - side + 1))
        top = int(rng.integers(0, base.height - side + 1))
        crop = base.crop((left, top, left + side, top + side)).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        pixels = np.asarray(crop, dtype=np.float32) * rng.uniform(0.7, 1.2, size=3)
        pixels += rng.normal(0.0, 4.0, size=pixels.shape)
        buffer = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, range(n)))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["clip", "efficientnet"], default="clip",
        help="clip: open_clip ViT-B-32 with random weights; efficientnet: the offline backend")
    parser.add_argument("--n", type=int, default=64, help="number of 1080x1080 JPEGs")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (both paths)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader decode processes for the PIL path")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path (median reported)")
    args = parser.parse_args()

    if args.model == "clip":
        embedder = OpenClipEmbedder("ViT-B-32", None, allow_random=True, device=args.device,
                                    batch_size=args.batch_size, num_workers=args.workers)
    else:
        embedder = EfficientNetEmbedder(device=args.device, batch_size=args.batch_size,
                                        num_workers=args.workers)
    device = embedder.device
    device_name = torch.cuda.get_device_name(
        device) if device.type == "cuda" else (f"cpu ({platform.processor() or platform.machine()}, "
                                               f"{os.cpu_count()} cores)")

    t0 = time.perf_counter()
    jpegs = make_jpegs(args.n)
    generate_s = time.perf_counter() - t0

    pixels = torch.randn(args.batch_size, 3, embedder.input_size, embedder.input_size, device=device)
    batches = max(1, args.n // args.batch_size)

    def model_only() -> None:  # the ceiling both paths approach when decoding keeps up
        for _ in range(batches):
            embedder.encode_pixels(pixels)

    def fast_path() -> np.ndarray:
        return embed_jpeg_bytes(jpegs, embedder, device=device.type, batch_size=args.batch_size)

    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, data in enumerate(jpegs):
            path = Path(folder) / f"{i:06d}.jpg"
            path.write_bytes(data)
            paths.append(path)

        def pil_path() -> np.ndarray:
            return embedder.embed_paths(paths, progress=False)

        # warm-up (CUDA context, cuDNN/cuBLAS plans, nvJPEG handles), then interleaved timed repeats so that
        # a busy neighbour on a shared machine slows every path alike; the median is reported
        embedder.encode_pixels(pixels)
        embed_jpeg_bytes(jpegs[: args.batch_size], embedder, device=device.type, batch_size=args.batch_size)
        embedder.embed_paths(paths[: args.batch_size], progress=False)
        seconds: dict[str, list[float]] = {"model": [], "fast": [], "pil": []}
        results: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for name, run in (("model", model_only), ("fast", fast_path), ("pil", pil_path)):
                _sync(device)
                t0 = time.perf_counter()
                result = run()
                _sync(device)
                seconds[name].append(time.perf_counter() - t0)
                if result is not None:
                    results[name] = result
    model_s, fast_s, pil_s = (float(np.median(seconds[k])) for k in ("model", "fast", "pil"))
    fast, plain = results["fast"], results["pil"]

    agreement = float(np.nanmin((fast * plain).sum(axis=1)))
    print(json.dumps({
        "model": embedder.id,
        "weights": "random (speed only)" if embedder.id.endswith(":random") else "pretrained",
        "device": device_name,
        "dtype": "bf16 autocast" if device.type == "cuda" else "float32",
        "n": args.n,
        "image_size": f"{SIDE}x{SIDE}",
        "batch_size": args.batch_size,
        "workers": args.workers,
        "torch_threads": torch.get_num_threads(),
        "fast_path_img_per_s": round(args.n / fast_s, 1),
        "pil_dataloader_img_per_s": round(args.n / pil_s, 1),
        "speedup": round(pil_s / fast_s, 2),
        "model_only_img_per_s": round(batches * args.batch_size / model_s, 1),
        "min_cosine_fast_vs_pil": round(agreement, 4),
        "repeats": args.repeats,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "generate_jpegs_s": round(generate_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
