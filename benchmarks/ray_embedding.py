"""The embedding stage on a local Ray with 1 and 2 workers (embedder actors and decode/quality tasks).

Each setting embeds the same photos and captions of the smoke demo from an empty vector cache (so every
vector is computed), on one local Ray started once with `--cpus` CPUs; the stage's time includes the
actors loading their models, as a real run's does. Prints one JSON object with the seconds per setting,
photos per second and the speed-up of 2 workers over 1.

    python benchmarks/ray_embedding.py                       # smoke demo, 2 CPUs, 1 vs 2 workers
    python benchmarks/ray_embedding.py --workers 1 2 4 --cpus 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import ray

from engage.config import PROJECT_ROOT, load_settings
from engage.distributed.cluster import _quiet_ray_data, ray_session
from engage.distributed.engine import RayEngine
from engage.features.pipeline import FeaturePipeline
from engage.training import load_training_posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--demo-dir", default="data/demo-smoke")
    args = parser.parse_args()
    base = load_settings(PROJECT_ROOT / "configs" / "smoke.yaml", [f"data.demo.out_dir={args.demo_dir}",
                                                                   "image.embedder=efficientnet"])
    posts = load_training_posts(base)
    ray.init(num_cpus=args.cpus, include_dashboard=False, configure_logging=False, log_to_driver=False)
    _quiet_ray_data()
    results = {}
    try:
        for workers in args.workers:
            settings = base.model_copy(deep=True)
            settings.runtime.engine = "ray"
            settings.runtime.ray_workers = workers
            settings.runtime.ray_cpus_per_worker = args.cpus / workers
            with tempfile.TemporaryDirectory() as cache, ray_session(settings.runtime):
                settings.features.cache_dir = cache
                engine = RayEngine(settings.runtime, cache)
                pipeline = FeaturePipeline.from_settings(settings)
                # the driver's models, loaded before timing
                _ = pipeline.image_embedder, pipeline.text_embedder
                started = time.perf_counter()
                pipeline.embed(posts, progress=False, engine=engine)
                seconds = time.perf_counter() - started
            results[f"{workers}_workers"] = {"seconds": round(seconds, 1),
                                             "photos_per_s": round(posts["image"].nunique() / seconds, 2)}
    finally:
        ray.shutdown()
    first, last = args.workers[0], args.workers[-1]
    print(json.dumps({
        "photos": int(posts["image"].nunique()), "captions": int(posts["caption"].nunique()),
        "ray_cpus": args.cpus,
        "embedder": "efficientnet:lite0:imagenet", **results,
        f"speedup_{last}_over_{first}": round(
            results[f"{first}_workers"]["seconds"] / results[f"{last}_workers"]["seconds"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
