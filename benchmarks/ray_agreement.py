"""Does the Ray engine give the local engine's model? Test metrics of the same fit, local and on Ray, by size.

For each table, the posts are embedded and featurized once, on the local engine, from one feature cache
(the Ray engine's feature table equals the local one: tests/distributed/test_ray_engine.py), then the
models are fitted by `engage.training.fit_targets` with the same settings on each engine and evaluated by
`engage.training.evaluate` on the same test posts and draft pairs, as `train.py` does:

* local: `runtime.engine=local`;
* local with another `train.seed`, for each `--local-seeds` (how far a fit moves from bagging and column
  sampling alone: the yardstick for a Ray fit's difference);
* Ray, for each `--workers` count: `runtime.engine=ray` on one local Ray of `--ray-cpus` CPUs, each Ray Train
  worker reserving `--cpus-per-worker` CPUs (LightGBM `tree_learner=data_parallel`, the training rows dealt
  round-robin into one shard per worker; see engage/distributed/boosting.py).

It prints, per table, every test metric of the local fit, each Ray fit's difference (Ray - local), the
largest absolute difference, the early-stopped trees of every estimator and the wall seconds of each fit
(a Ray fit's seconds include starting its Ray Train worker groups, one per stage; starting Ray once is
reported apart).

Tables (`--tables`, in order):

    smoke                  the smoke demo (configs/smoke.yaml, ~250 training posts)
    default                the default demo (configs/default.yaml, ~2,500 posts)
    large_accounts_16536   ../shared/data/real/large_accounts_16536.csv (real, read in place, never copied)
    PATH.csv               any canonical posts table (data.source=table)
    scale:N                N posts of large_accounts_16536 replicated as benchmarks/scale.py builds them
                           (text.embedder=static, image.embedder=efficientnet, as scale.py runs them)

    python benchmarks/ray_agreement.py --tables smoke --cache /tmp/cache
    nice -n 10 python benchmarks/ray_agreement.py --tables smoke default large_accounts_16536 scale:100000 \\
        --cache /tmp/cache --json agreement.json > agreement.log 2>&1 &

`--cache` is the feature cache every table reads and fills (features.cache_dir); a warm one skips the
embedding, which is not what this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def table_overrides(spec: str, work: Path) -> tuple[Path, list[str]]:
    """The config file and the overrides of one `--tables` entry."""
    if spec == "smoke":
        return ROOT / "configs" / "smoke.yaml", []
    if spec == "default":
        return ROOT / "configs" / "default.yaml", []
    if spec.startswith("scale:"):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from scale import replicated_table

        n = int(spec.split(":", 1)[1])
        path = work / f"scale-{n}.parquet"
        replicated_table(n).to_parquet(path, index=False)
        return ROOT / "configs" / "default.yaml", [
            "data.source=table", f"data.path={path}", "text.embedder=static", "image.embedder=efficientnet"]
    path = Path(spec) if spec.endswith((".csv", ".parquet")) else REAL / f"{spec}.csv"
    if not path.exists():
        raise SystemExit(f"--tables {spec}: no such table ({path})")
    return ROOT / "configs" / "default.yaml", ["data.source=table", f"data.path={path}"]


def trees(models: dict[str, Any]) -> dict[str, int]:
    """Trees kept by each fitted estimator of the models (the early-stopped ones stop per engine)."""
    out = {}
    for name, model in models.items():
        for part in ("level_", "uplift_", "model_"):
            estimator = getattr(model, part, None)
            if estimator is not None and hasattr(estimator, "booster_"):
                out[f"{name}.{part.rstrip('_')}"] = int(estimator.booster_.num_trees())
    return out


def run_table(spec: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from engage.config import load_settings
    from engage.engines import open_engine
    from engage.training import draft_pairs, evaluate, featurize, fit_targets, load_training_posts

    config, overrides = table_overrides(spec, work)
    settings = load_settings(config, [*overrides, f"features.cache_dir={args.cache}", *args.set])
    started = time.perf_counter()
    posts = load_training_posts(settings, progress=False)
    posts.attrs.pop("report", None)
    log(f"{spec}: {len(posts)} posts loaded ({time.perf_counter() - started:.0f} s); featurizing (local)")
    data = featurize(settings, posts, progress=False)
    log(f"{spec}: features {data.features.shape} ({time.perf_counter() - started:.0f} s); draft pairs")
    pairs = draft_pairs(data.pipeline, posts, data.vectors, data.features, data.split.test)
    row: dict[str, Any] = {"table": spec, "posts": len(posts), "train_posts": int(len(data.split.train)),
                           "valid_posts": int(len(data.split.valid)), "test_posts": int(len(data.split.test)),
                           "prepare_seconds": time.perf_counter() - started, "fits": {}}

    def fit(name: str, engine_settings: Any, engine: Any = None) -> None:
        log(f"{spec}: fitting on {name}")
        began = time.perf_counter()
        models = (fit_targets(engine_settings, data.features, data.labels, data.split) if engine is None else
                  fit_targets(engine_settings, data.features, data.labels, data.split, engine))
        seconds = time.perf_counter() - began
        metrics, _ = evaluate(posts, data.features, data.labels, models, data.split, pairs)
        test = {k: float(v) for k, v in metrics.items() if k.startswith("test_")}
        row["fits"][name] = {"fit_seconds": seconds, "metrics": test, "trees": trees(models)}
        log(f"{spec}: {name} fitted in {seconds:.1f} s")

    fit("local", settings)
    for seed in args.local_seeds:  # the local fit's own spread: the same data, another seed
        reseeded = settings.model_copy(deep=True)
        reseeded.train.seed = seed
        fit(f"local-seed{seed}", reseeded)
    for workers in args.workers:
        ray_settings = settings.model_copy(deep=True)
        ray_settings.runtime.engine = "ray"
        ray_settings.runtime.ray_workers = workers
        ray_settings.runtime.ray_cpus_per_worker = args.cpus_per_worker
        with open_engine(ray_settings) as engine:  # the Ray started in main: used as it is
            fit(f"ray-{workers}w", ray_settings, engine)
    local = row["fits"]["local"]["metrics"]
    for name, f in row["fits"].items():
        if name == "local":
            continue
        f["differences"] = {k: f["metrics"][k] - v for k, v in local.items() if k in f["metrics"]}
        # Metrics only: a `_n` key counts pairs (those with tied predictions are left out), not a score.
        scored = {k: abs(d) for k, d in f["differences"].items() if np.isfinite(d) and not k.endswith("_n")}
        f["max_abs_difference"] = max(scored.values(), default=float("nan"))
        f["worst_metric"] = max(scored, key=lambda k: scored[k], default="")
    return row


def report(row: dict[str, Any]) -> str:
    fits = row["fits"]
    names = [n for n in fits if n != "local"]
    lines = [f"### {row['table']}: {row['posts']} posts ({row['train_posts']} train / {row['valid_posts']} "
             f"validation / {row['test_posts']} test)", "",
             "| test metric | local | " + " | ".join(f"{n} - local" for n in names) + " |",
             "|---" * (2 + len(names)) + "|"]
    for key, value in fits["local"]["metrics"].items():
        cells = [f"{fits[n]['differences'].get(key, float('nan')):+.4f}" for n in names]
        lines.append(f"| {key.removeprefix('test_')} | {value:.4f} | " + " | ".join(cells) + " |")
    lines.append("| **largest abs. difference** | | " + " | ".join(
        f"**{fits[n]['max_abs_difference']:.4f}** ({fits[n]['worst_metric'].removeprefix('test_')})"
        for n in names) + " |")
    lines.append("| fit wall seconds | " + " | ".join(f"{fits[n]['fit_seconds']:.1f}" for n in fits) + " |")
    all_trees = sorted({k for f in fits.values() for k in f["trees"]})
    lines.append("| trees kept (" + ", ".join(all_trees) + ") | " + " | ".join(
        " ".join(str(fits[n]["trees"].get(k, "-")) for k in all_trees) for n in fits) + " |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    """One line per table: each Ray fit's largest difference beside the local fit's own spread over seeds."""
    lines = ["| table | posts | Ray fit | largest abs. difference (metric) | local, other seeds: largest "
             "(metric) | metrics beyond the seeds' spread | fit s: local / Ray |", "|---" * 7 + "|"]
    for row in rows:
        fits = row.get("fits", {})
        seeds = [f for name, f in fits.items() if name.startswith("local-seed")]
        spread = ({k: max(abs(f["differences"][k]) for f in seeds) for k in seeds[0]["differences"]}
                  if seeds else {})
        noise = max(((k, d) for k, d in spread.items() if np.isfinite(d) and not k.endswith("_n")),
                    key=lambda kd: kd[1], default=("", float("nan")))
        for name, f in fits.items():
            if not name.startswith("ray"):
                continue
            scored = {k: abs(d) for k, d in f["differences"].items()
                      if np.isfinite(d) and not k.endswith("_n")}
            worst = max(scored, key=lambda k: scored[k], default="")
            compared = [k for k in scored if k in spread and np.isfinite(spread[k])]
            beyond = [k for k in compared if scored[k] > spread[k]]
            lines.append(
                f"| {row['table']} | {row['posts']} | {name} | {scored.get(worst, float('nan')):.4f} "
                f"({worst.removeprefix('test_')}) | "
                + (f"{noise[1]:.4f} ({noise[0].removeprefix('test_')})" if seeds else "-") + " | "
                + (f"{len(beyond)} of {len(compared)}" if seeds else "-")
                + f" | {fits['local']['fit_seconds']:.0f} / {f['fit_seconds']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=["smoke", "default", "large_accounts_16536"],
                        help="tables to fit, in order (see above)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1], help="Ray Train worker counts")
    parser.add_argument("--cpus-per-worker", type=float, default=0.5,
                        help="CPUs each Ray Train worker reserves")
    parser.add_argument("--local-seeds", type=int, nargs="*", default=[],
                        help="also fit locally with these train.seed values (the local fit's own spread)")
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--cache",
                        help="the feature cache (features.cache_dir) of every table")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more config overrides for every table (e.g. train.targets=[likes])")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--summarize", type=Path, nargs="+", metavar="JSON",
                        help="only print the summary of earlier runs' --json files")
    args = parser.parse_args()
    if args.summarize:
        print(summary([row for path in args.summarize for row in json.loads(path.read_text())]))
        return 0
    if args.cache is None:
        parser.error("--cache is required (the feature cache of every table)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import ray

    from engage.distributed.cluster import _quiet_ray_data

    began = time.perf_counter()
    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, configure_logging=False, log_to_driver=False)
    _quiet_ray_data()
    log(f"local Ray of {args.ray_cpus} CPUs started in {time.perf_counter() - began:.1f} s")
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="engage-ray-agreement-") as tmp:
            for spec in args.tables:
                try:
                    row = run_table(spec, args, Path(tmp))
                except Exception as e:  # one table failing does not lose the others' figures
                    traceback.print_exc()
                    row = {"table": spec, "error": f"{type(e).__name__}: {e}"}
                rows.append(row)
                if "fits" in row:
                    print("\n" + report(row) + "\n", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=2))
    finally:
        ray.shutdown()
    print("\n" + summary([r for r in rows if "fits" in r]) + "\n")
    print(f"(wall seconds on {os.cpu_count()} CPUs; load average at the end "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())})")
    return 0 if all("fits" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
