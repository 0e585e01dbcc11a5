"""Posts in, canonical table out.

`load_posts(source, path, images_dir=None)` is the one entry point: every source (a table, an Instaloader
dump, the demo simulator) returns the same columns (see `engage.data.schema.COLUMNS`), sorted by
account then time.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engage.data.schema import CANONICAL, COLUMNS, LoadReport, sort_posts, validate_posts
from engage.errors import DataError

SOURCES = ("table", "instaloader", "insights", "demo")


def _date_format(options: dict[str, object]) -> str | None:
    value = options.get("date_format")
    return None if value is None else str(value)


def load_posts(source: str, path: str | Path | None, images_dir: str | Path | None = None, *, strict: bool = False,
               progress: bool = True, **options: object) -> pd.DataFrame:
    """Load posts from `source` ('table' | 'instaloader' | 'insights' | 'demo') at `path` as the canonical table.

    For 'table' and 'insights', `options` may hold `date_format` (data.date_format: day-first, month-first or a
    strptime format) for text dates whose day/month order the column does not tell. For 'insights', `options` may hold `account`: the account of a single-account export that names none.
    For 'table', `options` may also hold `columns` (the table's names -> canonical names) and `account` (the
    account of a single-account table; see `engage.data.table`).
    For 'demo', `path` is the directory the simulator writes to (generated on first use) and `options`
    are passed to the simulator (seed, n_accounts, ...). An Instaloader dump skips the files it cannot
    use and names them in the report (`posts.attrs["report"].skipped_files`); `strict=True` makes the
    first such file an error instead. Tables are always strict: they are the user's own files. `progress=False`
    hides the progress bars of long loads (an Instaloader dump, generating the demo).
    """
    if source == "table":
        from engage.data.table import load_table

        if path is None:
            raise DataError("data.source is 'table' but data.path is not set; point it at a CSV or Parquet file")
        columns = options.get("columns")
        account = options.get("account")
        posts = load_table(path, images_dir=images_dir, date_format=_date_format(options),
                           columns=columns,  # type: ignore[arg-type]
                           account=None if account is None else str(account))
    elif source == "instaloader":
        from engage.data.instaloader import load_dump

        if path is None:
            raise DataError("data.source is 'instaloader' but data.path is not set; point it at the dump directory")
        posts = load_dump(path, strict=strict, progress=progress)
    elif source == "insights":
        from engage.data.insights import load_insights

        if path is None:
            raise DataError("data.source is 'insights' but data.path is not set; point it at the CSV export or the "
                            "folder of Graph API JSON files")
        account = options.get("account")
        posts = load_insights(path, account=None if account is None else str(account), date_format=_date_format(options))
    elif source == "demo":
        from engage.data.demo import load_demo

        posts = load_demo(path, progress=progress, **options)  # type: ignore[arg-type]
    else:
        raise DataError(f"unknown data source {source!r}; use one of {', '.join(SOURCES)}")
    report = posts.attrs.get("report")
    posts = sort_posts(posts).reset_index(drop=True)
    if report is not None:
        posts.attrs["report"] = report
    return posts


__all__ = ["CANONICAL", "COLUMNS", "LoadReport", "SOURCES", "load_posts", "validate_posts"]
