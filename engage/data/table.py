"""Posts from a CSV or Parquet table whose columns already have the canonical names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from engage.bounded import check_table_file
from engage.data.schema import CANONICAL, LoadReport, attach_report, validate_posts
from engage.errors import DataError


def read_table(path: str | Path, *, text: Sequence[str] | None = None,
               missing: str = "does not exist or is not a file; give data.path a CSV or Parquet file") -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file as it is; errors name the file. The one table reader of engage (posts
    tables, insights exports, batch scoring's drafts).

    `text`: the CSV columns read as text, the others parsed (default: every column as text, for the posts
    loaders that validate each value themselves); an empty CSV cell is missing either way. `missing`: what
    to say when there is no such file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(missing, file=path)
    suffix = path.suffix.lower()
    check_table_file(path)  # a regular file, not a device; bounded size, also once decompressed
    dtype: Any = str if text is None else {column: str for column in text}
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv"):
            return pd.read_csv(path, dtype=dtype, keep_default_na=False, na_values=[""],
                               sep="\t" if suffix == ".tsv" else ",")
    except (pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as e:
        raise DataError(f"cannot be read as a {suffix[1:]} table: {e}", file=path) from e
    raise DataError("has an unknown extension; use .csv, .tsv or .parquet", file=path)


def load_table(path: str | Path, images_dir: str | Path | None = None, date_format: str | None = None) -> pd.DataFrame:
    """The canonical table from a CSV/Parquet file; extra columns are ignored and reported once. `date_format`
    (data.date_format) settles how text dates are read; the report says how they were."""
    raw = read_table(path)
    report = LoadReport(source="table", path=str(path))
    report.ignored_columns = [c for c in raw.columns if c not in CANONICAL]
    posts = validate_posts(raw, file=path, images_dir=images_dir, date_format=date_format, report=report)
    return attach_report(posts, report)


class TableOptions(BaseModel):
    """Options of the `table` source (`data.images_dir`, `data.date_format`)."""

    model_config = ConfigDict(extra="forbid")
    images_dir: str | Path | None = None  # base for relative image paths (default: the paths as they are)
    date_format: str | None = None  # day-first, month-first or a strptime format (None: detected per column)


def load_source(path: Path | None, options: TableOptions, *, progress: bool = True) -> pd.DataFrame:
    """The `table` source of the registry (engage/data/sources.py): tables are always strict."""
    assert path is not None  # the registry refuses a missing path first
    return load_table(path, images_dir=options.images_dir, date_format=options.date_format)
