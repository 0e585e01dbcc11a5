"""The static caption embedder (`text.embedder=static`) against MiniLM: speed, and quality on the real tables.

Speed: captions per second of each embedder on the same captions of a real table, in one process, each
from a cold start of its `embed` (MiniLM through ONNX Runtime, as `text.runtime=auto` runs it on a CPU;
the static table already distilled, its one-off distillation timed apart).

Quality: on each real table (../shared/data/real/, never copied into the project) engage's features and
its likes model are built twice on the same time split, once per caption embedder, everything else equal
(`train.targets=[likes]`, default settings otherwise); the test posts' relative Spearman (the Spearman of
actual and predicted likes, both minus the account's training mean: does the model rank an account's
posts above or below its usual?) of each run, and their difference with a 95% interval from a paired
bootstrap over accounts (the same resampled accounts for both embedders, so the shared noise cancels).

Kept apart from benchmarks/real_data.py (which compares engage with the account baseline and the
reference model) so that both can change independently; it uses that script's table converters.

    python benchmarks/static_embedder.py                                  # large_accounts_16536
    python benchmarks/static_embedder.py --all                            # every real table
    python benchmarks/static_embedder.py --speed-captions 2000 --bootstrap 2000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_data  # noqa: E402  (the table converters)

EMBEDDERS = ("minilm", "static")


def relative_spearman(actual: np.ndarray, predicted: np.ndarray, baseline: np.ndarray) -> float:
    from engage.model import evaluation as ev

    ok = ~np.isnan(actual)
    return ev.spearman(actual[ok] - baseline[ok], predicted[ok] - baseline[ok])


def paired_bootstrap(accounts: np.ndarray, actual: np.ndarray, baseline: np.ndarray, first: np.ndarray,
                     second: np.ndarray, rounds: int, seed: int = 7) -> tuple[float, float, float]:
    """(difference second - first, 2.5% and 97.5% quantiles) of relative Spearman, accounts resampled."""
    rng = np.random.default_rng(seed)
    names, codes = np.unique(accounts, return_inverse=True)
    rows_of = [np.flatnonzero(codes == k) for k in range(len(names))]
    point = relative_spearman(actual, second, baseline) - relative_spearman(actual, first, baseline)
    diffs = []
    for _ in range(rounds):
        rows = np.concatenate([rows_of[k] for k in rng.integers(0, len(names), len(names))])
        diffs.append(relative_spearman(actual[rows], second[rows], baseline[rows])
                     - relative_spearman(actual[rows], first[rows], baseline[rows]))
    low, high = np.nanquantile(diffs, [0.025, 0.975])
    return float(point), float(low), float(high)


def speed(captions: list[str], cache_dir: str) -> dict[str, float]:
    """Captions per second of each embedder on `captions` (no feature cache; models loaded beforehand)."""
    from engage.config import TextSettings
    from engage.embed.static import StaticEmbedder
    from engage.embed.text import make_text_embedder

    out: dict[str, float] = {}
    started = time.perf_counter()
    static = StaticEmbedder(cache_dir)
    static.embed(["warm up"])  # loads the table, or distils it once
    out["static_first_use_seconds"] = time.perf_counter() - started
    minilm = make_text_embedder(TextSettings(embedder="minilm"), onnx_dir=Path(cache_dir) / "onnx")
    minilm.embed(["warm up"])  # loads the weights and the ONNX export
    for name, embedder in (("minilm", minilm), ("static", static)):
        started = time.perf_counter()
        embedder.embed(captions)
        out[f"{name}_captions_per_second"] = len(captions) / (time.perf_counter() - started)
    out["speedup"] = out["static_captions_per_second"] / out["minilm_captions_per_second"]
    return out


def quality(name: str, table: Path, cache_dir: str, rounds: int) -> dict[str, float]:
    from engage.config import load_settings
    from engage.data import load_posts
    from engage.features.pipeline import FeaturePipeline
    from engage.model import evaluation as ev
    from engage.training import _labels, evaluate, fit_targets

    posts = load_posts("table", table)
    predictions: dict[str, np.ndarray] = {}
    out: dict[str, float] = {"posts": float(len(posts))}
    for embedder in EMBEDDERS:
        settings = load_settings(ROOT / "configs" / "default.yaml", [
            "data.source=table", f"data.path={table}", f"features.cache_dir={cache_dir}",
            f"text.embedder={embedder}", "train.targets=[likes]",
        ])
        started = time.perf_counter()
        pipeline = FeaturePipeline.from_settings(settings)
        vectors = pipeline.embed(posts, progress=False)
        split = ev.time_split(posts, settings.train.test_fraction, settings.train.valid_fraction)
        pipeline.fit(vectors, rows=split.train)
        features = pipeline.transform(posts, vectors)
        labels, _, skipped = _labels(posts, features, ["likes"])
        if "likes" not in labels:
            raise RuntimeError(f"{name}: no likes to train on ({skipped.get('likes')})")
        models = fit_targets(settings, features, labels, split)
        metrics, preds = evaluate(posts, features, labels, models, split)
        predictions[embedder] = preds["likes"]["expected"]
        out[f"{embedder}_spearman_relative"] = metrics["test_likes_spearman_relative"]
        out[f"{embedder}_mae_log1p"] = metrics["test_likes_mae_log1p"]
        out[f"{embedder}_seconds"] = time.perf_counter() - started
        print(f"  {embedder}: relative Spearman {metrics['test_likes_spearman_relative']:.4f}, MAE(log1p) "
              f"{metrics['test_likes_mae_log1p']:.4f} "
              f"({out[f'{embedder}_seconds']:.0f} s: embed through --cache-dir, "
              "features, fit, evaluate)",
              flush=True)
    preds_likes = preds["likes"]
    accounts = posts["account"].to_numpy()[split.test]
    point, low, high = paired_bootstrap(accounts, preds_likes["actual"], preds_likes["baseline"],
                                        predictions["minilm"], predictions["static"], rounds)
    out.update({"difference": point, "low": low, "high": high, "test_accounts": float(len(set(accounts)))})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(real_data.TABLES), action="append",
                        help="this table (repeatable; default large_accounts_16536)")
    parser.add_argument("--all", action="store_true", help="every real table")
    parser.add_argument("--real-dir", type=Path, default=real_data.REAL, help="where the real tables are")
    parser.add_argument("--cache-dir", default=str(ROOT / "data" / "cache"),
                        help="feature cache (default data/cache: MiniLM's vectors are computed once)")
    parser.add_argument("--speed-captions", type=int, default=2000,
                        help="captions timed per embedder (0: skip)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap rounds for the interval")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = list(real_data.TABLES) if args.all else (args.only or ["large_accounts_16536"])
    lines = ["| table | posts | test accounts | MiniLM rel. Spearman "
             "| static rel. Spearman | static - MiniLM [95% CI] |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            source = args.real_dir / f"{name}.csv"
            if not source.is_file():
                print(f"{source} not found; skipping", file=sys.stderr)
                continue
            table = Path(tmp) / f"{name}.csv"
            convert = real_data.TABLES[name]
            if convert is None:
                shutil.copyfile(source, table)
            else:
                convert(source).to_csv(table, index=False)
            print(f"\n=== {name} ===", flush=True)
            if args.speed_captions and name == names[0]:
                from engage.data import load_posts

                captions = load_posts("table", table)["caption"].tolist()[: args.speed_captions]
                figures = speed(captions, args.cache_dir)
                print(f"  speed on {len(captions)} captions: MiniLM (ONNX Runtime) "
                      f"{figures['minilm_captions_per_second']:.0f}/s, "
                      f"static {figures['static_captions_per_second']:.0f}/s "
                      f"({figures['speedup']:.0f}x); static table ready "
                      f"in {figures['static_first_use_seconds']:.1f} s",
                      flush=True)
            r = quality(name, table, args.cache_dir, args.bootstrap)
            lines.append(f"| {name} | {int(r['posts'])} | "
                         f"{int(r['test_accounts'])} | {r['minilm_spearman_relative']:.4f} "
                         f"| {r['static_spearman_relative']:.4f} | "
                         f"{r['difference']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] |")
    print()
    print("\n".join(lines))
    print(f"(bootstrap: {args.bootstrap} rounds over test accounts, paired; load average at the end: "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
