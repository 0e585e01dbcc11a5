"""The fit stage alone, once per set of overrides, on the same features: seconds and the test metrics.

    python benchmarks/level_fit.py "" "train.level_folds=3"
    "train.level.n_estimators=300;train.level.learning_rate=0.06"

Each argument is one variant: `;`-separated `section.key=value` overrides ("" is the config as it is). The
data, vectors (through the feature cache: run `python train.py` first for a warm one) and split are the
config's; only `fit_targets` is timed, then `evaluate` gives the metrics issue 23 guards (likes MAE, relative
Spearman, draft pairs, interval coverage). Used for docs/performance.md "Suite and quick start".
"""

from __future__ import annotations

import argparse
import time

from engage.config import load_settings
from engage.training import draft_pairs, evaluate, featurize, fit_targets, load_training_posts

KEYS = ["test_likes_mae_log1p", "test_likes_spearman_relative", "test_likes_draft_pairs_7d",
        "test_likes_interval_coverage", "test_comments_mae_log1p", "test_comments_spearman_relative",
        "test_comments_interval_coverage", "test_risk_auc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/default.yaml", help="(default: configs/default.yaml)")
    parser.add_argument("variants", nargs="*", default=[""], help="';'-separated overrides per variant")
    args = parser.parse_args()
    for variant in args.variants or [""]:
        overrides = [o for o in variant.split(";") if o]
        settings = load_settings(args.config, overrides)
        posts = load_training_posts(settings, progress=False)
        data = featurize(settings, posts, progress=False)
        started, cpu = time.perf_counter(), time.process_time()
        models = fit_targets(settings, data.features, data.labels, data.split)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        pairs = draft_pairs(data.pipeline, posts, data.vectors, data.features, data.split.test)
        metrics, _ = evaluate(posts, data.features, data.labels, models, data.split, pairs)
        print(f"variant {overrides or '(config as it is)'}: fit {wall:.1f} s wall, {cpu:.1f} s CPU")
        print("   " + "  ".join(f"{k.removeprefix('test_')}={metrics[k]:.4f}" for k in KEYS if k in metrics),
              flush=True)


if __name__ == "__main__":
    main()
