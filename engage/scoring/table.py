"""Scoring a table of drafts: one row of predictions per draft, a row's error in place of its predictions.

    drafts = read_drafts("drafts.csv")                     # 1-based `row` column; unknown columns refused
    scores = score_drafts(scorer, drafts, images_dir)      # OUTPUT_COLUMNS, one row per draft, in order
    write_scores(scores, "scores.parquet")

The drafts table has the fields of `/v1/score` as columns: `account` (required), `caption`, `posted_at`,
`followers`, `sponsored`, and `image` as a path to the photo (relative paths are read from `images_dir`).
`python -m engage.batch` (engage/batch.py) runs it here, the Ray model actors (engage/distributed/scoring.py)
on a cluster: the same function, so a draft gets the same answer on either engine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError
from tqdm.auto import tqdm

from engage.bounded import MAX_IMAGE_FILE_BYTES, open_regular
from engage.data.table import read_table
from engage.errors import DataError, EngageError
from engage.files import spreadsheet_safe
from engage.model.draft import Draft
from engage.model.targets import COUNT_TARGETS
from engage.scoring.answers import Answer
from engage.scoring.scorer import SCORE_CHUNK, Scorer

log = logging.getLogger(__name__)

DRAFT_COLUMNS = ("account", "caption", "posted_at", "followers", "sponsored", "image")
#: How many flags each output row names (the API returns all of them; a table wants the main ones).
TOP_FLAGS = 3
#: Every count target of the registry (NaN where the model
#: has none), the risk, the main flags, the row's error.
OUTPUT_COLUMNS = ["row", "account", *(f"{t}_{k}" for t in COUNT_TARGETS for k in ("expected", "low", "high")),
                  "authenticity_risk", "flags", "error"]


def read_drafts(path: str | Path) -> pd.DataFrame:
    """The drafts table (Parquet, CSV or TSV) with a 1-based `row` column; unknown columns are an error."""
    path = Path(path)
    frame = read_table(path, text=("account", "caption", "image"),
                       missing="does not exist; pass a Parquet or CSV table of drafts")
    unknown = [c for c in frame.columns if c not in DRAFT_COLUMNS]
    if unknown:
        raise DataError(
            f"has unknown column(s) {', '.join(unknown)}; the columns are {', '.join(DRAFT_COLUMNS)}",
                        file=path)
    if "account" not in frame.columns:
        raise DataError("has no 'account' column; every draft names the account it is for", file=path)
    frame = frame.reset_index(drop=True)
    frame.insert(0, "row", np.arange(1, len(frame) + 1))
    return frame


def _draft(record: dict[str, Any], images_dir: Path) -> Draft:
    """A drafts-table row as a `Draft` (`Draft.from_record`);
    `image` is a photo path, relative to `images_dir`."""

    def read_photo(name: str) -> bytes:
        image = Path(name)
        image = image if image.is_absolute() else images_dir / image
        try:
            with open_regular(image, max_bytes=MAX_IMAGE_FILE_BYTES) as handle:  # no device, bounded size
                return handle.read()
        except DataError as e:
            raise DataError(f"photo {image} {e.message}", field="image") from e
        except OSError as e:
            raise DataError(f"photo {image} cannot be read ({e.strerror or e})", field="image") from e

    return Draft.from_record(record, read_image=read_photo)


def _why(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'draft'}: {e['msg']}"
                         for e in error.errors())
    return str(error)


def score_drafts(scorer: Scorer, drafts: pd.DataFrame, images_dir: str | Path, *,
                 progress: bool = False) -> pd.DataFrame:
    """One output row per draft, in order; a draft that cannot be scored gets its `error` instead.

    Drafts are scored by `Scorer.score_many`, a chunk at a time through the serving batcher's own code: a
    draft that fails there is scored again alone and gets its own error."""
    records = drafts.to_dict(orient="records")
    rows: list[dict[str, Any]] = [{"row": int(r["row"]), "account": r.get("account"),
                                   "error": ""} for r in records]
    answers: list[Answer | EngageError] = []
    with tqdm(total=len(records), desc="scoring drafts", unit="draft", disable=not progress) as bar:
        # A chunk at a time, photos read only for the chunk
        # being scored: a table's photos never sit in memory.
        for start in range(0, len(records), SCORE_CHUNK):
            parsed: list[Draft | EngageError] = []
            for record in records[start:start + SCORE_CHUNK]:
                try:
                    parsed.append(_draft(record, Path(images_dir)))
                except ValidationError as e:
                    parsed.append(DataError(_why(e)))  # no file, row or field: the message names them
                except EngageError as e:
                    parsed.append(e)
            answers.extend(scorer.score_many(parsed))
            bar.update(len(parsed))
    for out, answer in zip(rows, answers, strict=True):
        if isinstance(answer, EngageError):
            out["error"] = _why(answer)
        else:
            out.update(answer.flat(max_flags=TOP_FLAGS))
    return pd.DataFrame(rows).reindex(columns=OUTPUT_COLUMNS)


def write_scores(scores: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        scores.to_parquet(path, index=False)
    elif path.suffix.lower() == ".csv":
        # The account, flags and error cells come from the drafts table: `=HYPERLINK(...)` must reach a
        # spreadsheet as text, not as a formula (docs/security.md). Lines end in CRLF (RFC 4180), so that a
        # cell holding a lone CR is quoted too, not split into a new row.
        spreadsheet_safe(scores).to_csv(path, index=False, lineterminator="\r\n")
    else:
        raise DataError("must end in .parquet or .csv", file=path)
    return path
