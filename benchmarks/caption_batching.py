"""How MiniLM's caption batches are formed, and what it costs: padding and CPU seconds per batch size.

    python benchmarks/caption_batching.py        # the default demo's captions (generated if absent)
    python benchmarks/caption_batching.py --captions 512 --repeats 3 --batch-sizes 64 32 16 8

Prints one JSON object:

* `padding`: token positions the batches compute (batch size x its longest caption, in word pieces) over the
  positions the captions hold, for the old batching (the table's chunks of 256, each sorted by characters,
  batches of 64) and for engage's (chunks taken longest caption first, each batched by word pieces), at each
  batch size; `quadratic` weighs each position by its batch's length (attention's part).
* `cpu_seconds`: `MiniLMEmbedder._embed_onnx` on a seeded sample of the captions at each batch size, the
  sizes interleaved within each of `--repeats` rounds (load on a shared machine falls on all alike); the
  median CPU and wall seconds, and the largest difference of the vectors from the first batch size's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import numpy as np

CHUNK = 256  # the local engine's chunk (engage.features.local_engine.LocalEngine.chunk_size)


def _cost(lengths: np.ndarray, chunks: list[np.ndarray], batch: int) -> tuple[float, float]:
    linear = quadratic = 0.0
    for chunk in chunks:
        for start in range(0, len(chunk), batch):
            rows = chunk[start:start + batch]
            width = float(lengths[rows].max())
            linear += len(rows) * width
            quadratic += len(rows) * width * width
    return linear / lengths.sum(), quadratic / float((lengths.astype(float) ** 2).sum())


def padding(captions: list[str], lengths: np.ndarray, batch_sizes: list[int]) -> dict[str, Any]:
    chars = np.array([len(c) for c in captions])
    before = [np.arange(s, min(s + CHUNK, len(captions)))[np.argsort(-chars[s:s + CHUNK], kind="stable")]
              for s in range(0, len(captions), CHUNK)]
    longest_first = np.argsort(-chars, kind="stable")
    after = [longest_first[s:s + CHUNK] for s in range(0, len(captions), CHUNK)]
    after = [chunk[np.argsort(-lengths[chunk], kind="stable")] for chunk in after]
    out: dict[str, Any] = {"before_batch_64": dict(zip(("linear", "quadratic"), _cost(lengths, before, 64),
                                                       strict=True))}
    for batch in batch_sizes:
        out[f"after_batch_{batch}"] = dict(zip(("linear", "quadratic"), _cost(lengths, after, batch),
                                               strict=True))
    return {k: {m: round(v, 3) for m, v in d.items()} for k, d in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/default.yaml",
                        help="config whose data gives the captions")
    parser.add_argument("--captions", type=int, default=512, help="captions sampled for the CPU timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 32, 16, 8])
    args = parser.parse_args()

    from engage.config import load_settings
    from engage.embed.text import MiniLMEmbedder
    from engage.training import load_training_posts

    captions = load_training_posts(load_settings(args.config), progress=False)["caption"].tolist()
    embedder = MiniLMEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=tempfile.mkdtemp(),
                              progress=False)
    model = embedder._load()
    embedder._onnx_session(model)
    tokens = model.tokenizer(captions, truncation=True, max_length=embedder.max_tokens)["input_ids"]
    lengths = np.array([len(t) for t in tokens])
    sample_rows = np.random.default_rng(0).choice(len(captions), min(args.captions, len(captions)),
                                                  replace=False)
    sample = [captions[i] for i in sample_rows]

    seconds: dict[int, list[tuple[float, float]]] = {b: [] for b in args.batch_sizes}
    vectors: dict[int, np.ndarray] = {}
    for _ in range(args.repeats):
        for batch in args.batch_sizes:
            embedder.batch_size = batch
            wall, cpu = time.perf_counter(), time.process_time()
            vectors[batch] = embedder._embed_onnx(model, sample, False)
            seconds[batch].append((time.perf_counter() - wall, time.process_time() - cpu))
    first = vectors[args.batch_sizes[0]]
    print(json.dumps({
        "captions": len(captions), "word_pieces_mean": round(float(lengths.mean()), 1),
        "at_the_limit": round(float((lengths >= embedder.max_tokens).mean()), 3),
        "padding": padding(captions, lengths, args.batch_sizes),
        "cpu_seconds": {str(b): {"median_cpu": round(float(np.median([c for _, c in s])), 2),
                                 "median_wall": round(float(np.median([w for w, _ in s])), 2),
                                 "max_abs_difference": float(np.abs(vectors[b] - first).max())}
                        for b, s in seconds.items()},
        "sampled": len(sample), "repeats": args.repeats,
    }, indent=1))


if __name__ == "__main__":
    main()
