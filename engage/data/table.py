"""Posts from a CSV or Parquet table whose columns already have the canonical names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from engage.bounded import check_table_file
from engage.data.schema import CANONICAL, LoadReport, attach_report, validate_posts
from engage.errors import DataError


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file as it is (strings stay strings); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError("does not exist or is not a file; give data.path a CSV or Parquet file", file=path)
    suffix = path.suffix.lower()
    check_table_file(path)  # a regular file, not a device; bounded size, also once decompressed
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".tsv"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], sep="\t" if suffix == ".tsv" else ",")
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
