"""Batch scoring: a table of drafts in, one row of predictions per draft out.

    python -m engage.batch drafts.parquet scores.parquet                       # models:/engage@champion
    python -m engage.batch drafts.csv scores.csv --model models/engage         # an exported bundle
    python -m engage.batch drafts.parquet scores.parquet --engine ray          # spread over Ray model actors

The drafts table has the fields of `/v1/score` as columns: `account` (required), `caption`, `posted_at`,
`followers`, `sponsored`, and `image` as a path to the photo (relative paths are read from the drafts
file's directory, or `--images-dir`). Drafts are scored in chunks by `Scorer.score_many`, the API's own code
(engage/scoring/table.py reads, scores and writes the tables).
A draft that cannot be scored (a missing field, an unreadable photo) gets a row with its `error` and no
predictions, and is reported by row number (row 1 is the table's first draft): nothing is dropped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from engage.errors import ConfigError, EngageError
from engage.model.bundle import EngageModel
from engage.scoring.scorer import Scorer
from engage.scoring.table import read_drafts, score_drafts, write_scores


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m engage.batch",
        description="Score a table of draft posts with a trained "
        "engage model: expected likes and comments with their "
        "80% range, the authenticity risk and the main flags, "
        "one output row per draft. Drafts that cannot be scored "
        "are reported by row number (row 1 = the first draft) and get a row with the error.",
        epilog="Columns: account (required), caption, posted_at, followers, sponsored, image (a photo path). "
        "On a Ray cluster the photo paths must name storage every node can read.",
    )
    parser.add_argument("drafts", help="Parquet (.parquet) or CSV (.csv) table of drafts")
    parser.add_argument("out", help="where to write the scores (.parquet or .csv)")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
        help="local: score here; ray: spread the drafts over model actors on Ray (default: local)")
    parser.add_argument("--model", default="models:/engage@champion",
        help="registered model URI or an exported bundle directory (default: models:/engage@champion)")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db",
        help="MLflow tracking store holding the registered model (default: sqlite:///mlflow.db)")
    parser.add_argument("--images-dir", default=None,
                        help="base of relative photo paths (default: the drafts file's folder)")
    parser.add_argument("--ray-address", default=None,
                        help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--workers", type=int, default=2, help="model actors on Ray (default: 2)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0,
                        help="CPUs each model actor reserves (default: 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        drafts = read_drafts(args.drafts)
        images_dir = Path(args.images_dir) if args.images_dir else Path(args.drafts).resolve().parent
        model = EngageModel.from_uri(args.model, tracking_uri=args.tracking_uri)
        model.check_embedder()
        if args.engine == "local":
            scores = score_drafts(Scorer(model), drafts, images_dir, progress=True)
        else:
            from engage.config import RuntimeSettings

            try:
                from engage.distributed.scoring import score_on_ray
            except ImportError as e:
                raise ConfigError(
                    f"--engine ray needs Ray ({e}); install it with pip install -e \".[ray]\"") from e
            runtime = RuntimeSettings(engine="ray", ray_address=args.ray_address, ray_workers=args.workers,
                                      ray_cpus_per_worker=args.cpus_per_worker)
            scores = score_on_ray(model, drafts, images_dir, runtime)
        written = write_scores(scores, args.out)
    except EngageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = scores[scores["error"] != ""]
    for row, why in zip(failed["row"], failed["error"], strict=True):
        print(f"row {row}: {why}", file=sys.stderr)
    print(f"scored {len(scores) - len(failed)} of {len(scores)} "
          f"drafts ({len(failed)} could not be scored, listed above) "
          f"-> {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
