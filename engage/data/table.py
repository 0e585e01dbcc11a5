"""Posts from a CSV or Parquet table: the canonical column names, or the user's own through a mapping.

    load_table("export.csv", columns={"Date": "posted_at", "Likes": "likes"}, account="anna.bakes")

A spreadsheet export rarely uses engage's names. `columns` renames the table's columns (its names ->
canonical ones, `data.columns` in the config or on the command line); a single-account table without an
`account` column takes `account`; a table without post ids gets ids made from each post's time and caption
(said so in the load report). Columns named as the canonical ones but for case
(`Likes`, `Caption`) are read as them. Without `account` or an account column, the file's name is the
account (said so). A table that still lacks a required column is refused with the columns it has and a
mapping that would work, guessed from their names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from engage.bounded import check_table_file
from engage.data.schema import CANONICAL, COLUMNS, LoadReport, attach_report, validate_posts
from engage.errors import DataError

#: Names spreadsheets and exports use for the canonical columns (compared lower-case, without spaces,
#: underscores, dashes or dots), for the mapping an error
#: suggests. Only used to suggest, never applied silently.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "account": ("account", "username", "user", "handle", "owner", "ownerusername", "profile", "accountname"),
    "post_id": ("postid", "id", "shortcode", "mediaid", "code", "permalink", "url", "link", "posturl"),
    "posted_at": ("postedat", "date", "time", "datetime", "timestamp", "publishtime", "published",
                  "publishedat",
                  "created", "createdat", "createdtime", "takenat", "posted", "postdate", "date_utc"),
    "caption": ("caption", "text", "description", "title", "captiontext", "body"),
    "likes": ("likes", "like", "likecount", "likescount", "hearts", "reactions"),
    "comments": ("comments", "comment", "commentcount", "commentscount"),
    "followers": ("followers", "followercount", "followerscount"),
    "image": ("image", "photo", "imagepath", "file", "filename", "picture"),
    "impressions": ("impressions", "views"),
    "reach": ("reach", "accountsreached"),
    "saves": ("saves", "saved"),
    "shares": ("shares", "shared"),
}
#: Columns the table must end up with (caption may be absent: an empty caption).
REQUIRED = [c for c, (_, required) in COLUMNS.items() if required and c != "caption"]


def _key(name: object) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name).strip().lower())


def suggest_mapping(found: list[str]) -> dict[str, str]:
    """A mapping {their column: canonical column} guessed from the names in `found` (first match wins)."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for column in found:
        if column in CANONICAL:
            taken.add(column)
    for column in found:
        if column in CANONICAL:
            continue
        key = _key(column)
        for canonical, names in SYNONYMS.items():
            if canonical not in taken and (key == _key(canonical) or key in names):
                mapping[column] = canonical
                taken.add(canonical)
                break
    return mapping


def _flow(mapping: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in mapping.items()) + "}"


def read_table(path: str | Path, *, text: Sequence[str] | None = None,
               missing: str = "does not exist or is not a file; give "
               "data.path a CSV or Parquet file") -> pd.DataFrame:
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


def apply_mapping(raw: pd.DataFrame, columns: Mapping[str, str] | None, *, file: object) -> pd.DataFrame:
    """`raw` with its columns renamed by `columns` (their name -> canonical name); errors name the file."""
    if not columns:
        return raw
    unknown_targets = sorted({v for v in columns.values() if v not in CANONICAL})
    if unknown_targets:
        raise DataError(
            f"data.columns maps to {', '.join(map(repr, unknown_targets))}, which engage does not know; "
                        f"map to one of {', '.join(CANONICAL)}", file=file)
    absent = [k for k in columns if k not in raw.columns]
    if absent:
        raise DataError(
            f"data.columns names column(s) {', '.join(map(repr, absent))} that the table does not have; "
                        f"its columns are {', '.join(map(repr, map(str, raw.columns)))}", file=file)
    targets = list(columns.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise DataError(f"data.columns maps several columns to {', '.join(twice)}; map one column to each",
                        file=file)
    clashes = [t for k, t in columns.items() if t in raw.columns and t not in columns and k != t]
    if clashes:
        raise DataError(
            f"data.columns maps a column to {', '.join(clashes)}, but the table already has a column of that "
                        "name; map that one elsewhere or drop it from the table", file=file)
    return raw.rename(columns=dict(columns))


def made_post_ids(frame: pd.DataFrame) -> pd.Series:
    """Ids for posts that have none: `t` + the first 16 hex digits of sha256(account, time, caption).

    The same post gets the same id in every load (a later export of the same table keeps its ids), and two
    posts at one instant with different captions get different ones; the time is taken as written.
    """
    accounts = frame["account"].astype(str) if "account" in frame else pd.Series("", index=frame.index)
    captions = frame["caption"] if "caption" in frame else pd.Series("", index=frame.index)
    ids = []
    for account, when, caption in zip(accounts, frame["posted_at"], captions, strict=True):
        text = (f"{account}\x1f{'' if when is None else when}\x1f"
                f"{'' if not isinstance(caption, str) else caption}")
        ids.append("t" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])
    return pd.Series(ids, index=frame.index, dtype=object)


def load_table(path: str | Path, images_dir: str | Path | None = None, date_format: str | None = None, *,
               columns: Mapping[str, str] | None = None, account: str | None = None) -> pd.DataFrame:
    """The canonical table from a CSV/Parquet file; extra columns are ignored and reported once. `date_format`
    (data.date_format) settles how text dates are read; the report says how they were.

    `columns` maps the table's names to canonical ones; `account` is the account of a single-account table
    (an error when the table has an account column of its own); post ids are made when the table has none.
    """
    raw = read_table(path)
    found = [str(c) for c in raw.columns]
    raw = apply_mapping(raw, columns, file=path)
    report = LoadReport(source="table", path=str(path))
    raw = _fold_case(raw, report)
    missing = [c for c in REQUIRED if c not in raw.columns and c not in ("post_id", "account")]
    if missing:
        raise _unmappable(found, missing, columns, path)
    if account is not None:
        if not str(account).strip():
            raise DataError("data.account is empty; give the account (username) the table's posts belong to",
                            file=path)
        if "account" in raw.columns:
            raise DataError("data.account is set but the table has an account column; use one or the other",
                            file=path)
        raw = raw.assign(account=str(account).strip())
        report.notes.append(f"every post is of account {str(account).strip()} (data.account)")
    elif "account" not in raw.columns:
        name = Path(path).stem
        raw = raw.assign(account=name)
        report.notes.append(
            f"the table has no account column: every post is taken as account {name!r}, the file's "
                            "name (set data.account=<username> to name it, or map a column to account)")
    if "post_id" not in raw.columns:
        raw = raw.assign(post_id=made_post_ids(raw))
        report.notes.append(
            f"the table has no post ids: {len(raw)} made from each post's account, time and caption "
                            "(map a column to post_id to keep your own)")
    report.ignored_columns = [str(c) for c in raw.columns if c not in CANONICAL]
    posts = validate_posts(raw, file=path, images_dir=images_dir, date_format=date_format, report=report)
    return attach_report(posts, report)


def _fold_case(raw: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Columns named as the canonical ones but for case or spaces (`Likes`, `Post ID`) take the canonical
    name, when exactly one column matches and none has the exact name; the report says so."""
    renames: dict[str, str] = {}
    for canonical in CANONICAL:
        if canonical in raw.columns:
            continue
        matches = [c for c in raw.columns if _key(c) == _key(canonical)]
        if len(matches) == 1:
            renames[matches[0]] = canonical
    if renames:
        report.notes.append(
            "columns read by their canonical names: " + ", ".join(f"{k} -> {v}" for k, v in renames.items()))
    return raw.rename(columns=renames)


def _unmappable(found: list[str], missing: list[str], columns: Mapping[str, str] | None,
                path: object) -> DataError:
    mapped = dict(columns or {})
    guessed = suggest_mapping([c for c in found if c not in mapped and c not in mapped.values()])
    suggestion = {**mapped,
                  **{k: v for k, v in guessed.items() if v not in mapped.values() and _key(k) != _key(v)}}
    still = [c for c in missing if c not in suggestion.values()]
    advice = []
    if suggestion:
        advice.append(f"a mapping that would work: data.columns=\"{_flow(suggestion)}\"")
    if still:
        advice.append(f"no column looks like {', '.join(still)}: add "
                      f"{'it' if len(still) == 1 else 'them'} to the table")
    return DataError(f"missing required column(s) {', '.join(missing)}; the table's columns are "
                     f"{', '.join(found) or 'none'}; " + "; ".join(advice), file=path)


class TableOptions(BaseModel):
    """Options of the `table` source (`data.images_dir`,
    `data.date_format`, `data.columns`, `data.account`)."""

    model_config = ConfigDict(extra="forbid")
    images_dir: str | Path | None = None  # base for relative image paths (default: the paths as they are)
    date_format: str | None = None  # day-first, month-first or a strptime format (None: detected per column)
    columns: dict[str, str] | None = None  # the table's column names -> canonical names (data.columns)
    account: str | None = None  # the account of a single-account table that names none (data.account)


def load_source(path: Path | None, options: TableOptions, *, progress: bool = True) -> pd.DataFrame:
    """The `table` source of the registry (engage/data/sources.py): tables are always strict."""
    assert path is not None  # the registry refuses a missing path first
    return load_table(path, images_dir=options.images_dir, date_format=options.date_format,
                      columns=options.columns, account=options.account)
