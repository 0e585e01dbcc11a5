"""First vs second feature build over the same posts, in one run: the second must read every vector from
the cache (target: at least 10x faster).

    python benchmarks/feature_cache.py                          # the default demo (~2,600 posts)
    python benchmarks/feature_cache.py --config configs/smoke.yaml

Both builds run the whole feature step as training does (a new FeaturePipeline each time, embedders
built, vectors embedded or read, PCA fitted, features of every post computed) against a fresh temporary
cache directory. The demo data itself is generated (or reused) before timing starts. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(settings, posts) -> float:
    from engage.features.pipeline import FeaturePipeline

    started = time.perf_counter()
    pipeline = FeaturePipeline.from_settings(settings)
    vectors = pipeline.embed(posts, progress=False)
    pipeline.fit(vectors)
    pipeline.transform(posts, vectors)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    args = parser.parse_args()
    from engage.config import load_settings
    from engage.training import load_training_posts

    with tempfile.TemporaryDirectory() as cache:
        settings = load_settings(args.config, [*args.overrides, f"features.cache_dir={cache}"])
        posts = load_training_posts(settings)
        posts.attrs = {}
        first = build(settings, posts)
        second = build(settings, posts)
    print(json.dumps({"posts": len(posts), "first_build_s": round(first, 2),
                      "second_build_s": round(second, 2),
                      "speedup": round(first / second, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
