"""The canonical posts table: one row per post, the same columns for every source.

Every loader ends by calling `validate_posts`, which coerces types and raises a `DataError` naming the
file, the row (1-based data row) and the field for anything that cannot be used. Nothing is dropped
silently: loaders that skip or merge rows record it in a `LoadReport`, attached as `frame.attrs["report"]`
and logged once.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engage.errors import DataError

log = logging.getLogger(__name__)

#: column -> (meaning, required). Required columns must be present and non-missing.
COLUMNS: dict[str, tuple[str, bool]] = {
    "account": ("the account (username) that posted", True),
    "post_id": ("unique id of the post", True),
    "posted_at": ("when it was posted, UTC", True),
    "caption": ("caption text, may be empty", True),
    "likes": ("like count, integer >= 0; missing where Instagram hid it (Instaloader dumps only)", True),
    "comments": ("comment count, integer >= 0, may be missing", False),
    "followers": ("the account's follower count, may be missing", False),
    "image": ("path to the image file; empty for videos and expired media", False),
    "is_video": ("whether the post is a video", False),
    "sponsored": ("whether the post is sponsored, may be missing", False),
    "felt_fake": ("whether the audience found it inauthentic, may be missing", False),
    "impressions": ("times the post was shown (Meta now calls them views), may be missing", False),
    "reach": ("accounts that saw the post at least once, may be missing", False),
    "saves": ("times the post was saved, may be missing", False),
    "shares": ("times the post was shared, may be missing", False),
    "profile_visits": ("visits to the account's profile from the post, may be missing", False),
    "follows": ("accounts that followed after seeing the post, may be missing", False),
    "link_clicks": ("taps on the account's link from the post, may be missing", False),
}
CANONICAL = list(COLUMNS)
#: The per-post outcome counts a professional account's insights hold besides likes and comments. Each is
#: optional: a source that lacks one leaves it <NA>, and its target is skipped with the reason.
INSIGHT_COUNTS = ("impressions", "reach", "saves", "shares", "profile_visits", "follows", "link_clicks")
#: Every per-post outcome count (what the count targets learn from; history baselines are kept for each).
OUTCOME_COUNTS = ("likes", "comments", *INSIGHT_COUNTS)


@dataclass
class LoadReport:
    """What a loader did besides returning rows: merges, skips and ignored columns, with reasons."""

    source: str
    path: str
    rows: int = 0
    merged_duplicates: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    #: files left out because they could not be used (corrupt, truncated, no post node), with the reason
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    #: count column -> posts whose count the owner hid (kept as missing, not zero)
    hidden_counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # decisions the loader made that the user should know

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def skip_file(self, file: object, reason: str) -> None:
        self.skipped_files.append((str(file), reason))

    def summary(self) -> str:
        parts = [f"{self.rows} posts from {self.source} {self.path}"]
        if self.merged_duplicates:
            parts.append(f"{self.merged_duplicates} duplicate snapshots merged (kept the highest counts)")
        if self.ignored_columns:
            parts.append(f"extra columns ignored: {', '.join(self.ignored_columns)}")
        for column, count in sorted(self.hidden_counts.items()):
            parts.append(f"{count} posts with hidden {column} counts (kept; {column} unknown)")
        for reason, count in sorted(self.skipped.items()):
            parts.append(f"{count} skipped: {reason}")
        if self.skipped_files:
            parts.append(f"{len(self.skipped_files)} unreadable file(s) skipped")
        parts.extend(self.notes)
        return "; ".join(parts)

    def skipped_files_text(self) -> str:
        """One line per skipped file, `path: reason` (logged with the run as an artifact)."""
        return "".join(f"{file}: {reason}\n" for file, reason in self.skipped_files)


#: A date written with numbers only, day and month in an order the text does not tell: 03/04/2024, 3.4.24,
#: 03-04-2024 18:30. Year-first forms (2024-04-03, 2024/04/03) are ISO-like and never ambiguous.
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:(?:\s+|T|,\s*)(.*))?$")
#: data.date_format's shorthands for the order of a numeric date (times after it are read as usual).
DATE_ORDERS = {"day-first": "DD/MM/YYYY, day first", "month-first": "MM/DD/YYYY, month first"}
#: How many rows an ambiguity error names.
_SHOWN_ROWS = 5


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def _numeric_date(match: re.Match, day_first: bool) -> pd.Timestamp:
    first, _, second, year, rest = match.groups()
    day, month = (int(first), int(second)) if day_first else (int(second), int(first))
    full_year = int(year) if len(year) == 4 else (2000 + int(year) if int(year) < 70 else 1900 + int(year))
    return pd.Timestamp(f"{full_year:04d}-{month:02d}-{day:02d}" + (f" {rest}" if rest else ""))


def date_order(values: pd.Series, *, file: object, column: str = "posted_at", date_format: str | None = None,
               default: tuple[str, str] | None = None) -> tuple[bool | None, str]:
    """Which way the column's numeric dates (03/04/2024) put day and month, decided once for the whole column
    from all its values, and a sentence for the load report saying how the column is read.

    Returns (day_first, description); day_first is None when the column has no numeric dates. Both orders
    fit and disagree (every day <= 12 and some day != month) -> a `DataError` naming rows that show it and
    the `data.date_format` values that settle it, unless the source knows its order (`default`: day-first or
    month-first, and why, e.g. Meta's export writes month first); neither fits -> an error naming rows.
    """
    matches = [(position, _NUMERIC_DATE.match(v) if isinstance(v, str) else None)
               for position, v in enumerate(values.tolist(), start=1)]
    numeric = [(position, m) for position, m in matches if m is not None]
    if date_format is not None and date_format not in DATE_ORDERS:
        return None, f"{column} read with data.date_format {date_format!r}"
    if not numeric:
        kinds = {"epoch seconds" if not isinstance(v, str) or _is_number(v) else "ISO 8601"
                 for v in values.tolist() if not _missing(v)}
        return None, f"{column} read as {' and '.join(sorted(kinds)) or 'ISO 8601'}"
    if date_format is not None:
        day_first = date_format == "day-first"
        return day_first, f"{column} read as {DATE_ORDERS[date_format]} (data.date_format)"
    firsts = np.array([int(m.group(1)) for _, m in numeric])
    seconds = np.array([int(m.group(3)) for _, m in numeric])
    rows = np.array([position for position, _ in numeric])
    day_first_fits = bool((firsts <= 31).all() and (seconds <= 12).all() and (firsts >= 1).all()
                          and (seconds >= 1).all())
    month_first_fits = bool((firsts <= 12).all() and (seconds <= 31).all() and (firsts >= 1).all()
                            and (seconds >= 1).all())

    def shown(which: np.ndarray) -> str:
        return ", ".join(f"row {r} ({values.iloc[r - 1]!s})" for r in rows[which][:_SHOWN_ROWS])

    settle = "set data.date_format to day-first or month-first (or a strptime format such as %d/%m/%Y %H:%M)"
    if day_first_fits and month_first_fits:
        differ = firsts != seconds
        if differ.any() and default is not None:
            return default[0] == "day-first", (
                f"{column} read as {DATE_ORDERS[default[0]]} ({default[1]}; no date in "
                                               "the column tells the order: data.date_format sets it)")
        if differ.any():
            raise DataError(
                f"dates such as {shown(differ)} read both day-first "
                "and month-first, and no date in the column "
                f"tells which; {settle}", file=file, field=column)
        return True, (f"{column} read as DD/MM/YYYY (day and month are equal "
                      "in every numeric date, so the order does not matter)")
    if not day_first_fits and not month_first_fits:
        raise DataError(
            "the numeric dates fit neither day-first nor "
            f"month-first: {shown(seconds > 12)} put a value over 12 "
            f"second and {shown(firsts > 12)} first; one column holds one date format, {settle}",
            file=file, field=column)
    decisive = (firsts > 12) if day_first_fits else (seconds > 12)
    example = rows[decisive][0]
    name = "day-first" if day_first_fits else "month-first"
    return day_first_fits, (f"{column} read as {DATE_ORDERS[name]} for every row, as row {example} "
                            f"({values.iloc[example - 1]!s}) shows; data.date_format sets it")


def parse_timestamps(values: pd.Series, *, file: object, column: str = "posted_at",
                     date_format: str | None = None,
        report: LoadReport | None = None, default_order: tuple[str, str] | None = None) -> pd.Series:
    """ISO 8601 strings, epoch seconds (numbers or numeric strings) or numeric dates (03/04/2024, one
    day/month order for the whole column, see `date_order`) -> UTC timestamps; errors name the row.
    `date_format` is data.date_format: day-first, month-first or a strptime format for every text cell. The
    way the column was read goes into `report.notes`."""
    day_first, how = date_order(values, file=file, column=column, date_format=date_format,
                                default=default_order)
    strptime = date_format if date_format is not None and date_format not in DATE_ORDERS else None
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    for position, (index, value) in enumerate(values.items(), start=1):
        if _missing(value):
            raise DataError("is missing; every post needs the time it was posted", file=file, row=position,
                            field=column)
        try:
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                stamp = pd.Timestamp(float(value), unit="s", tz="UTC")
            elif isinstance(value, str) and _is_number(value):
                stamp = pd.Timestamp(float(value), unit="s", tz="UTC")
            elif strptime is not None:
                stamp = pd.to_datetime(str(value).strip(), format=strptime)
            elif isinstance(value, str) and (match := _NUMERIC_DATE.match(value)) is not None:
                stamp = _numeric_date(match, bool(day_first))
            else:
                stamp = pd.Timestamp(value)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime) as e:
            expected = (f"the data.date_format {strptime!r}" if strptime
                        else "ISO 8601 (2024-05-01T18:30:00Z) or epoch seconds")
            raise DataError(f"{str(value)[:40]!r} is not a date: use {expected}", file=file, row=position,
                            field=column) from e
        if pd.isna(stamp):
            raise DataError("is missing; every post needs the time it was posted", file=file, row=position,
                            field=column)
        out.loc[index] = stamp
    if report is not None:
        report.notes.append(how)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _counts(frame: pd.DataFrame, column: str, *, file: object, required: bool) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna() & (frame[column].astype(str).str.strip() != "")
    for position in np.flatnonzero(bad.to_numpy())[:1]:
        raise DataError(f"{str(frame[column].iloc[position])[:40]!r} is not a number", file=file,
                        row=position + 1, field=column)
    missing = values.isna()
    if required and missing.any():
        position = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError("is missing; it is required", file=file, row=position + 1, field=column)
    negative = values < 0
    if negative.any():
        position = int(np.flatnonzero(negative.to_numpy())[0])
        raise DataError(f"is negative ({values.iloc[position]:g}); counts must be >= 0", file=file,
                        row=position + 1, field=column)
    fractional = values.notna() & (values != np.floor(values.fillna(0)))
    if fractional.any():
        position = int(np.flatnonzero(fractional.to_numpy())[0])
        raise DataError(f"is not a whole number ({values.iloc[position]:g})", file=file, row=position + 1,
                        field=column)
    if values.notna().any() and values.max() > 2**62:
        position = int(np.argmax(values.fillna(0).to_numpy()))
        raise DataError("is implausibly large", file=file, row=position + 1, field=column)
    return values.round().astype("int64") if required else values.round().astype("Int64")


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _booleans(frame: pd.DataFrame, column: str, *, file: object, default: bool | None) -> pd.Series:
    if column not in frame:
        return pd.Series(default, index=frame.index, dtype="boolean")
    out = []
    for position, value in enumerate(frame[column].tolist(), start=1):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out.append(default)
        elif isinstance(value, (bool, np.bool_)):
            out.append(bool(value))
        elif isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
            out.append(bool(value))
        elif isinstance(value, str) and value.strip().lower() in _TRUE:
            out.append(True)
        elif isinstance(value, str) and value.strip().lower() in _FALSE:
            out.append(False)
        elif isinstance(value, str) and not value.strip():
            out.append(default)
        else:
            raise DataError(f"{str(value)[:40]!r} is not true/false", file=file, row=position, field=column)
    return pd.Series(out, index=frame.index, dtype="boolean")


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    text = frame[column].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
                             else str(v))
    return text.astype(str)  # an empty column maps to float64; text columns are text even when empty


def validate_posts(frame: pd.DataFrame, *, file: object, images_dir: str | Path | None = None,
                   hidden_likes: bool = False, date_format: str | None = None,
        report: LoadReport | None = None, default_date_order: tuple[str, str] | None = None) -> pd.DataFrame:
    """Coerce `frame` to the canonical table or raise a `DataError` naming file, row and field.

    Errors (not warnings): a missing required column, a missing account/post_id/date, a missing like
    count (unless `hidden_likes`: an Instaloader dump keeps a post whose owner hid its likes, with likes
    missing), a negative or fractional count, an unparseable date, a duplicate post_id, a date column whose
    day/month order cannot be told (`date_order`). How the dates were read goes into `report.notes`.
    """
    missing = [c for c,
               (_, required) in COLUMNS.items() if required and c not in frame.columns and c != "caption"]
    if missing:
        raise DataError(
            f"missing required column(s) {', '.join(missing)}; a posts table "
            f"needs {', '.join(c for c, (_, r) in COLUMNS.items() if r)}",
            file=file,
        )
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    for column in ("account", "post_id"):
        text = _text(frame, column).str.strip()
        empty = text == ""
        if empty.any():
            raise DataError("is empty; it is required", file=file,
                            row=int(np.flatnonzero(empty.to_numpy())[0]) + 1, field=column)
        out[column] = text
    duplicated = out["post_id"].duplicated(keep="first")
    if duplicated.any():
        position = int(np.flatnonzero(duplicated.to_numpy())[0])
        first = int(np.flatnonzero((out["post_id"] == out["post_id"].iloc[position]).to_numpy())[0])
        raise DataError(
            f"duplicate post_id {out['post_id'].iloc[position]!r} "
            f"(first seen in row {first + 1}); post ids must be unique",
            file=file, row=position + 1, field="post_id",
        )
    out["posted_at"] = parse_timestamps(frame["posted_at"], file=file, date_format=date_format, report=report,
                                         default_order=default_date_order)
    out["caption"] = _text(frame, "caption") if "caption" in frame else ""
    # Nullable (Int64) for every source, so that code downstream never depends on where posts came from.
    out["likes"] = _counts(frame, "likes", file=file, required=not hidden_likes).astype("Int64")
    for column in ("comments", "followers", *INSIGHT_COUNTS):
        out[column] = _counts(frame, column, file=file, required=False) if column in frame else pd.Series(
            pd.NA, index=frame.index, dtype="Int64")
    out["image"] = _resolve_images(frame, images_dir) if "image" in frame else pd.Series(
        [None] * len(frame), index=frame.index, dtype="object")
    out["is_video"] = _booleans(frame, "is_video", file=file, default=False).astype(bool)
    out["sponsored"] = _booleans(frame, "sponsored", file=file, default=None)
    out["felt_fake"] = _booleans(frame, "felt_fake", file=file, default=None)
    return out[CANONICAL]


def _resolve_images(frame: pd.DataFrame, images_dir: str | Path | None) -> pd.Series:
    base = Path(images_dir) if images_dir is not None else None

    def resolve(value: object) -> str | None:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return None
        text = str(value).strip()
        if not text:
            return None
        path = Path(text)
        if not path.is_absolute() and base is not None:
            path = base / path
        return str(path)

    # Built as an object Series: Series.map would infer pandas' str dtype and turn None into NaN (truthy).
    return pd.Series([resolve(value) for value in frame["image"]], index=frame.index, dtype="object")


def typed_posts(rows: dict[str, list]) -> pd.DataFrame:
    """The canonical table `validate_posts` makes of rows whose values are already of their column's type.

    For the API's drafts and their history, which their pydantic models have checked (account names, times
    with a zone, whole counts >= 0, booleans): the same dtypes and values, built in a millisecond instead of
    the tens that checking every column again costs a request. Absent optional columns are missing; a value
    of the wrong type is a `TypeError` (a programming error, not user input). Post ids must be unique.
    """
    n = len(rows["account"])
    if len(set(rows["post_id"])) != n:
        raise ValueError("typed_posts: post ids must be unique")
    columns: dict[str, object] = {}  # arrays in the canonical order: no Series, no reordering copy
    for column in CANONICAL:
        values = rows.get(column)
        if column in ("account", "post_id", "caption"):
            text = [str(v) for v in (values if values is not None else [""] * n)]
            columns[column] = pd.array([v.strip() for v in text] if column != "caption" else text, dtype=str)
        elif column == "posted_at":
            columns[column] = pd.to_datetime(values, utc=True).as_unit("ns").array
        elif column == "image":
            columns[column] = np.array(values if values is not None else [None] * n, dtype=object)
        elif column == "is_video":
            columns[column] = np.array(values if values is not None else [False] * n, dtype=bool)
        elif column in ("sponsored", "felt_fake"):
            columns[column] = pd.array(values if values is not None else [None] * n, dtype="boolean")
        else:  # the counts
            columns[column] = pd.array(values if values is not None else [None] * n, dtype="Int64")
    return pd.DataFrame(columns, copy=False)


def empty_posts() -> pd.DataFrame:
    """A canonical table with no rows (typed), e.g. for a draft with no history."""
    return validate_posts(pd.DataFrame({c: [] for c in CANONICAL}), file="<empty>")


def attach_report(frame: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    report.rows = len(frame)
    frame.attrs["report"] = report
    log.info(report.summary())
    return frame


_SHORTCODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Each shortcode character mapped to one that sorts in the
# alphabet's order (Instagram's base64 differs from ASCII).
_SHORTCODE_SORTABLE = str.maketrans(_SHORTCODE_ALPHABET, "".join(chr(48 + i) for i in range(64)))
_MEDIA_ID = re.compile(r"^\d+(_\d+)?$")  # a numeric media id, optionally with its owner: 2543..._1234
_SHORTCODE = re.compile(r"^[A-Za-z0-9_-]+$")


def post_id_order(post_ids: pd.Series) -> np.ndarray:
    """Ranks of post ids in the order Instagram made them, for posts that share an instant.

    Numeric media ids compare as numbers and shortcodes as the base-64 numbers they spell (Instagram's
    alphabet A-Z a-z 0-9 - _, not ASCII's, where "9" would sort before "A"); other ids compare as text.
    A longer number is a later one, so ids are compared by length first, then character by character.
    """
    ids = post_ids.astype(str).str.strip()
    if len(ids) and ids.str.match(_MEDIA_ID).all():
        keys = ids.str.split("_").str[0].str.lstrip("0")
    elif len(ids) and ids.str.match(_SHORTCODE).all():
        keys = ids.str.lstrip("A").str.translate(_SHORTCODE_SORTABLE)  # leading "A"s are zeros
    else:
        return pd.factorize(ids, sort=True)[0]
    length_rank = keys.str.len().to_numpy()
    text_rank = pd.factorize(keys, sort=True)[0]
    return np.lexsort((text_rank, length_rank)).argsort()


def sort_posts(posts: pd.DataFrame) -> pd.DataFrame:
    """The canonical order: account, then time, then (posts at one instant) the order Instagram made them."""
    tie = post_id_order(posts["post_id"])
    stamps = posts["posted_at"]
    if pd.api.types.is_datetime64_any_dtype(stamps):
        if getattr(stamps.dt, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        times = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    # not parsed yet (a loader sorting before validation): as the raw values, which validation then names
    else:
        times = pd.factorize(stamps.astype(str), sort=True)[0]
    accounts = pd.factorize(posts["account"].astype(str), sort=True)[0]
    order = np.lexsort((np.arange(len(posts)), tie, times, accounts))
    return posts.iloc[order]


def check_captions(captions: Sequence[str]) -> list[str]:
    """The captions as a list, or DataError naming the first (1-based) that is not text."""
    texts = list(captions)
    for position, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise DataError(
                f"is {type(text).__name__} {str(text)[:40]!r}, not text; "
                "give an empty string for a post without a caption",
                row=position, field="caption",
            )
    return texts
