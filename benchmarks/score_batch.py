"""What a scored draft costs in process, and what scoring drafts together shares, in one run.

    python benchmarks/score_batch.py                                        # models:/engage@champion
    python benchmarks/score_batch.py --model models/engage -n 30            # an exported bundle

Two measurements on one loaded model (the account of its latest post, the day after it):

  (a) `EngageModel.score` of drafts with a new 1080x1080 JPEG and caption each (nothing cached): the median
      per draft, and how it splits into photo decoding and quality, preprocessing, the embedders' forward
      passes and the rest (features, models, answer);
  (b) `Scorer.score_batch` of 1, 2, 4 and 8 prepared drafts whose vectors are cached: what a batch costs
      beyond its forward passes, per batch and per draft (the work the serving batcher shares).

Prints one JSON object with the machine's load average (a shared machine makes the figures noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

# benchmarks/ is on sys.path when the script runs
from serve_latency import CAPTION, photo_jpeg
from serve_process import numbered_jpeg


def timed(totals: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - started
    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models:/engage@champion",
                        help="MLflow model URI or bundle directory")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking store")
    parser.add_argument("-n", type=int, default=20, help="drafts timed in (a), repeats of each batch in (b)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from engage.model.bundle import EngageModel
    from engage.model.draft import Draft
    from engage.scoring import draft_vectors
    from engage.scoring.scorer import Scorer

    model = EngageModel.from_uri(args.model, args.tracking_uri)
    model.check_embedder()
    # what serve.py sets up, without the batcher
    scorer = Scorer.for_serving(model, vector_cache_items=10_000)
    latest = model.context_posts["posted_at"].idxmax()
    account = str(model.context_posts.loc[latest, "account"])
    when = model.context_posts.loc[latest, "posted_at"].normalize() + pd.Timedelta(days=1, hours=18)
    jpeg = photo_jpeg()
    result: dict[str, Any] = {"command": " ".join(["python", *sys.argv]), "model": args.model,
                              "embedder": model.embedder, "quality": model.pipeline.quality_version,
                              "photo_decoding": getattr(model.pipeline, "photo_decoding_", "full"),
                              "load_avg_start": os.getloadavg()}

    def draft(k: int) -> Draft:
        return Draft(account=account, caption=f"{CAPTION} #{k}", image=numbered_jpeg(jpeg, k), posted_at=when)

    # (a) whole drafts, nothing cached
    totals: dict[str, float] = defaultdict(float)
    vectors = scorer.vectors
    embedder = model.pipeline.image_embedder
    draft_vectors.image_quality = timed(totals, "photo_quality", draft_vectors.image_quality)
    # the decoder scoring calls: decode_photo (the model's own photo decoding), open_image before it
    decoder = "decode_photo" if hasattr(draft_vectors, "decode_photo") else "open_image"
    setattr(draft_vectors, decoder, timed(totals, "photo_decode", getattr(draft_vectors, decoder)))
    embedder.preprocess = timed(totals, "preprocessing", embedder.preprocess)
    vectors._forward = timed(totals, "forward_passes", vectors._forward)
    for k in range(3):
        scorer.score(draft(10**6 + k))
    totals.clear()
    seconds = []
    for k in range(args.n):
        started = time.perf_counter()
        scorer.score(draft(k))
        seconds.append(time.perf_counter() - started)
    parts = {name: round(total / args.n * 1000, 1) for name, total in totals.items()}
    parts["features_models_answer"] = round(float(np.mean(seconds)) * 1000 - sum(parts.values()), 1)
    result["draft_ms"] = {"p50": round(float(np.median(seconds)) * 1000, 1),
                          "mean": round(float(np.mean(seconds)) * 1000, 1), "mean_split": parts}

    # (b) batches of prepared drafts whose vectors are cached: the work around the networks
    batch = [draft(k) for k in range(8)]  # embedded in (a), so served from the vector cache
    result["score_batch_ms"] = {}
    for size in (1, 2, 4, 8):
        inputs = [scorer.prepare(d, when) for d in batch[:size]]
        scorer.score_batch(inputs)
        started = time.perf_counter()
        for _ in range(args.n):
            scorer.score_batch(inputs)
        per_batch = (time.perf_counter() - started) / args.n * 1000
        result["score_batch_ms"][str(size)] = {"per_batch": round(per_batch, 1),
                                               "per_draft": round(per_batch / size, 1)}
    result["load_avg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
