"""Batch scoring: a table of drafts in, one row of predictions per draft out.

    python -m engage.batch drafts.parquet scores.parquet                       # models:/engage@champion
    python -m engage.batch drafts.csv scores.csv --model models/engage         # an exported bundle
    python -m engage.batch drafts.parquet scores.parquet --engine ray          # spread over Ray model actors

The drafts table has the fields of `/v1/score` as columns: `account` (required), `caption`, `posted_at`,
`followers`, `sponsored`, and `image` as a path to the photo (relative paths are read from the drafts
file's directory, or `--images-dir`). Drafts are scored in chunks by `predict.score_batch`, the API's own code.
A draft that cannot be scored (a missing field, an unreadable photo) gets a row with its `error` and no
predictions, and is reported by row number (row 1 is the table's first draft): nothing is dropped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from tqdm.auto import tqdm

from engage.errors import ConfigError, DataError, EngageError
from engage.files import spreadsheet_safe
from engage.model.targets import COUNT_TARGETS

log = logging.getLogger(__name__)

DRAFT_COLUMNS = ("account", "caption", "posted_at", "followers", "sponsored", "image")
#: How many flags each output row names (the API returns all of them; a table wants the main ones).
TOP_FLAGS = 3
#: Every count target of the registry (NaN where the model has none), the risk, the main flags, the row's error.
OUTPUT_COLUMNS = ["row", "account", *(f"{t}_{k}" for t in COUNT_TARGETS for k in ("expected", "low", "high")),
                  "authenticity_risk", "flags", "error"]


def read_drafts(path: str | Path) -> pd.DataFrame:
    """The drafts table (Parquet or CSV) with a 1-based `row` column; unknown columns are an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError("does not exist; pass a Parquet or CSV table of drafts", file=path)
    from engage.bounded import check_table_file

    if path.suffix.lower() in (".parquet", ".pq", ".csv"):
        check_table_file(path)  # a regular file, not a device; bounded size, also once decompressed
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype={"account": str, "caption": str, "image": str}, keep_default_na=False,
                                na_values=[""])
        else:
            raise DataError("must end in .parquet or .csv", file=path)
    except (OSError, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot be read as a table ({type(e).__name__}: {e})", file=path) from e
    unknown = [c for c in frame.columns if c not in DRAFT_COLUMNS]
    if unknown:
        raise DataError(f"has unknown column(s) {', '.join(unknown)}; the columns are {', '.join(DRAFT_COLUMNS)}",
                        file=path)
    if "account" not in frame.columns:
        raise DataError("has no 'account' column; every draft names the account it is for", file=path)
    frame = frame.reset_index(drop=True)
    frame.insert(0, "row", np.arange(1, len(frame) + 1))
    return frame


def _draft(record: dict[str, Any], images_dir: Path) -> Any:
    from engage.model.draft import Draft

    fields = {k: v for k, v in record.items() if k in DRAFT_COLUMNS and not _missing(v)}
    if "image" in fields:
        image = Path(str(fields["image"]))
        image = image if image.is_absolute() else images_dir / image
        from engage.bounded import MAX_IMAGE_FILE_BYTES, open_regular

        try:
            with open_regular(image, max_bytes=MAX_IMAGE_FILE_BYTES) as handle:  # no device, bounded size
                fields["image"] = handle.read()
        except DataError as e:
            raise DataError(f"photo {image} {e.message}", field="image") from e
        except OSError as e:
            raise DataError(f"photo {image} cannot be read ({e.strerror or e})", field="image") from e
    if "posted_at" in fields:
        fields["posted_at"] = pd.Timestamp(fields["posted_at"]).to_pydatetime()
    return Draft(**fields)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT


def _why(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'draft'}: {e['msg']}" for e in error.errors())
    return str(error)


#: Drafts scored together (one forward pass per embedder, one feature table, one call per model).
SCORE_CHUNK = 32


def score_drafts(model: Any, drafts: pd.DataFrame, images_dir: str | Path, *, progress: bool = False) -> pd.DataFrame:
    """One output row per draft, in order; a draft that cannot be scored gets its `error` instead.

    Drafts are scored SCORE_CHUNK at a time by `predict.score_batch`, the serving batcher's own code: a draft
    that fails there is scored again alone and gets its own error (`predict.score_isolated`)."""
    from engage.model.predict import DraftInputs, flat_score, prepare_draft, score_isolated

    rows: list[dict[str, Any]] = []
    waiting: list[tuple[dict[str, Any], DraftInputs]] = []

    def flush() -> None:
        for (out, _), answer in zip(waiting, score_isolated(model, [inputs for _, inputs in waiting]), strict=True):
            if isinstance(answer, EngageError):
                out["error"] = _why(answer)
            elif isinstance(answer, BaseException):
                raise answer  # not the draft's fault: a bug, which must not pass for a bad row
            else:
                out.update(flat_score(answer, max_flags=TOP_FLAGS))
        waiting.clear()

    for record in tqdm(drafts.to_dict(orient="records"), desc="scoring drafts", unit="draft", disable=not progress):
        out: dict[str, Any] = {"row": int(record["row"]), "account": record.get("account"), "error": ""}
        rows.append(out)
        try:
            draft = _draft(record, Path(images_dir))
            waiting.append((out, prepare_draft(model, draft, draft.posted_at or datetime.now(UTC))))
        except (ValidationError, EngageError) as e:
            out["error"] = _why(e)
            continue
        if len(waiting) >= SCORE_CHUNK:
            flush()
    if waiting:
        flush()
    return pd.DataFrame(rows).reindex(columns=OUTPUT_COLUMNS)


def write_scores(scores: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        scores.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        # The account, flags and error cells come from the drafts table: `=HYPERLINK(...)` must reach a
        # spreadsheet as text, not as a formula (docs/security.md).
        # Lines end in CRLF (RFC 4180), so that a cell holding a lone CR is quoted too, not split into a new row.
        spreadsheet_safe(scores).to_csv(path, index=False, lineterminator="\r\n")
    else:
        raise DataError("must end in .parquet or .csv", file=path)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m engage.batch",
        description="Score a table of draft posts with a trained engage model: expected likes and comments with their "
        "80% range, the authenticity risk and the main flags, one output row per draft. Drafts that cannot be scored "
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
    parser.add_argument("--images-dir", default=None, help="base of relative photo paths (default: the drafts file's folder)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--workers", type=int, default=2, help="model actors on Ray (default: 2)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each model actor reserves (default: 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from engage.model.bundle import EngageModel

    try:
        drafts = read_drafts(args.drafts)
        images_dir = Path(args.images_dir) if args.images_dir else Path(args.drafts).resolve().parent
        model = EngageModel.from_uri(args.model, tracking_uri=args.tracking_uri)
        model.check_embedder()
        if args.engine == "local":
            scores = score_drafts(model, drafts, images_dir, progress=True)
        else:
            from engage.config import RuntimeSettings

            try:
                from engage.distributed.scoring import score_on_ray
            except ImportError as e:
                raise ConfigError(f"--engine ray needs Ray ({e}); install it with pip install -e \".[ray]\"") from e
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
    print(f"scored {len(scores) - len(failed)} of {len(scores)} drafts ({len(failed)} could not be scored, listed above) "
          f"-> {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
