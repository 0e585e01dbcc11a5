"""Train and evaluate engage, tracked in MLflow.

    python train.py                                   # the demo data (configs/default.yaml)
    python train.py --config configs/smoke.yaml       # a tiny demo, under 3 minutes
    python train.py train.lightgbm.num_leaves=31      # override single keys
    python train.py data.source=table data.path=posts.csv data.images_dir=photos/
    python train.py data.source=insights data.path=export.csv   # a Meta Business Suite / Instagram insights
    export python train.py data.source=table data.path=sheet.csv "data.columns={Date: posted_at}"   # your own
    column names python train.py data.outcomes=true                # also the published drafts recorded by
    serve.py (docs/outcomes.md)

The story of a run (data, vectors, split, features, models, evaluation, MLflow) lives in
engage/training.py; this script only parses the command line.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from engage.config import PROJECT_ROOT, load_settings
from engage.errors import EngageError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train engage's models (likes, comments, the "
        "insight counts the data has: impressions, reach, saves, "
        "shares, profile visits, follows, link clicks; and the "
        "authenticity risk), evaluate them on each account's "
        "latest posts against the account's own baseline, log "
        "the run to MLflow and register the model as 'engage'.",
        epilog="Overrides are section.key=value pairs, e.g. "
        "train.lightgbm.learning_rate=0.05 image.embedder=efficientnet. "
        "See engage/config.py for every key and its default. A table with its own column names: "
        "'data.columns={Date: posted_at, Likes: likes}'. "
        "data.outcomes=true also trains on the published drafts "
        "recorded by serve.py, and promotes only a model 2% better on posts neither model trained on. "
        "Compare runs with: mlflow ui --backend-store-uri sqlite:///mlflow.db",
    )
    parser.add_argument("--config", default=str(PROJECT_ROOT / "configs" / "default.yaml"),
        help="YAML config; keys it leaves out keep their defaults (default: configs/default.yaml)")
    parser.add_argument("--export", metavar="DIR", default=None,
        help="also export the model bundle to DIR (e.g. models/engage) for serving without MLflow")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="override single config keys")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The embedder fallback is already logged once, loudly; don't print it a second time as a Python warning.
    warnings.filterwarnings("ignore", message="image embedder: using")
    from engage.summary import summary_table
    from engage.training import train

    try:
        settings = load_settings(args.config, args.overrides)
        result = train(settings, export_dir=args.export, progress=not args.no_progress)
    except EngageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print()
    print(summary_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
