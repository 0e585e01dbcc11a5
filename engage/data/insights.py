"""Posts with their insights: what a professional account can export about its own posts.

`load_insights(path, account=None)` is what `load_posts("insights", ...)` calls. `path` is either

* a CSV/TSV **export** (Meta Business Suite: Insights -> Content -> Export data; Instagram's professional
  dashboard; or a table with the same columns, such as one_account_insights_176). Column names are matched
  against `CSV_COLUMNS` ignoring case, spaces and punctuation ("Profile Visits" = "profile_visits"); the
  first listed name present wins; every column that matches nothing (or loses to a better name) is reported
  in `report.ignored_columns`, never used silently. A `Hashtags` column is appended to the caption, because
  the hashtag features read the caption;
* **Graph API responses saved as JSON** (one file or a folder of them): media list pages
  (`/{ig-user-id}/media?fields=id,caption,like_count,comments_count,timestamp,permalink,media_type,username`,
  optionally with `insights.metric(...)` expanded in), per-media insights (`/{media-id}/insights?metric=...`),
  and the account node (`/{ig-user-id}?fields=username,followers_count`). Metric names map through
  `GRAPH_METRICS`; other metrics are reported.

The account of each post is the file's own (an `Account username` column, the media's `username`, the
account node), else `account` (the `data.account` setting), else the file or folder name; the report says
which. Bad rows are `DataError`s naming the file, the row (1-based data row; for JSON the position in the
page's `data` list) and the field as the file spells it. docs/data.md has the full mapping.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from engage.bounded import read_json_bounded
from engage.data.schema import (
    CANONICAL,
    INSIGHT_COUNTS,
    LoadReport,
    attach_report,
    sort_posts,
    validate_posts,
)
from engage.data.table import read_table
from engage.errors import DataError

#: canonical field -> the export's names for it, best first (compared after `normalise`).
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "account": ("Account username", "Username", "Account", "Account name"),
    "post_id": ("Post ID", "Media ID", "ID"),
    "posted_at": ("Publish time", "Published", "Timestamp", "Posted at", "Date"),
    "caption": ("Description", "Caption", "Text"),
    "hashtags": ("Hashtags",),
    "permalink": ("Permalink", "Link"),
    "post_type": ("Post type", "Media type"),
    "likes": ("Likes", "Like count"),
    "comments": ("Comments", "Comments count"),
    "impressions": ("Impressions", "Views"),
    "reach": ("Reach", "Accounts reached"),
    "saves": ("Saves", "Saved"),
    "shares": ("Shares",),
    "profile_visits": ("Profile visits", "Profile views"),
    "follows": ("Follows", "New followers"),
    "link_clicks": ("Link clicks", "Website clicks", "External link taps", "Link taps"),
    "followers": ("Followers", "Followers count"),
    "sponsored": ("Sponsored", "Paid partnership"),
}
#: Graph API insight metric -> canonical column, best first where two name the same thing (`views` replaced
#: `impressions` in 2025; an export holding both keeps `impressions`).
GRAPH_METRICS: dict[str, str] = {
    "impressions": "impressions", "views": "impressions", "reach": "reach", "saved": "saves",
    "shares": "shares",
    "profile_visits": "profile_visits", "follows": "follows", "website_clicks": "link_clicks",
    "link_clicks": "link_clicks", "likes": "likes", "comments": "comments",
}
_VIDEO_TYPES = {"reel", "reels", "video", "igreel", "igvideo", "igtv"}
_PHOTO_TYPES = {"image", "photo", "post", "carousel", "carouselalbum", "album", "igimage", "igcarousel",
                "igpost"}
_STORY_TYPES = {"story", "stories", "igstory"}
_SHORTCODE = re.compile(r"instagram\.com/(?:[^/]+/)?(?:p|reel|reels|tv)/([A-Za-z0-9_-]+)")
_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+$")
_MEDIA_KEYS = ("timestamp", "like_count", "comments_count", "media_type", "permalink", "caption")


def normalise(name: str) -> str:
    """A column name as compared: lower case, letters and
    digits only ('Profile Visits' -> 'profilevisits')."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def load_insights(path: str | Path, account: str | None = None,
                  date_format: str | None = None) -> pd.DataFrame:
    """The canonical posts table, with every insight count
    the export has, from an export or Graph API JSON."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json")
                       if not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise DataError("holds no .json files; point data.path at a "
                            "CSV export or a folder of Graph API responses", file=path)
        return _load_graph(files, path, account)
    if not path.is_file():
        raise DataError("does not exist; point data.path at an insights "
                        "CSV export or a folder of Graph API JSON files", file=path)
    if path.suffix.lower() == ".json":
        return _load_graph([path], path, account)
    return _load_export(path, account, date_format)


# -- CSV export -------------------------------------------------------------------------------------------


def match_columns(columns: list[str]) -> tuple[dict[str, str], list[str]]:
    """(canonical field -> the file's column, ignored columns
    with the reason where one lost to a better name)."""
    by_name: dict[str, str] = {}
    for column in columns:
        by_name.setdefault(normalise(column), column)
    chosen: dict[str, str] = {}
    for canonical, names in CSV_COLUMNS.items():
        for name in (canonical, *names):
            if normalise(name) in by_name:
                chosen[canonical] = by_name[normalise(name)]
                break
    used = set(chosen.values())
    ignored = []
    for column in columns:
        if column in used:
            continue
        rival = next((c for c, names in CSV_COLUMNS.items()
                      if normalise(column) in {normalise(n) for n in (c, *names)}), None)
        ignored.append(f"{column} ({chosen[rival]} used for {rival})" if rival in chosen else column)
    return chosen, ignored


def _load_export(path: Path, account: str | None, date_format: str | None = None) -> pd.DataFrame:
    raw = read_table(path)
    report = LoadReport(source="insights", path=str(path))
    chosen, report.ignored_columns = match_columns([str(c) for c in raw.columns])
    for needed in ("posted_at", "likes"):
        if needed not in chosen:
            names = ", ".join(repr(n) for n in CSV_COLUMNS[needed])
            raise DataError(f"has no column for {needed} (looked for {names}); is this an insights export?",
                            file=path)
    frame = raw.rename(columns={source: canonical for canonical, source in chosen.items()})[list(chosen)]
    frame = frame.reset_index(drop=True)
    frame = _drop_stories(frame, chosen, report)
    for column in ("likes", "comments", "followers", *INSIGHT_COUNTS):
        if column in frame:
            frame[column] = frame[column].map(lambda v: v.replace(",", "") if isinstance(v, str)
                                              and _THOUSANDS.match(v.strip()) else v)
    frame["account"] = _export_accounts(frame, chosen, path, account, report)
    frame["post_id"] = _export_post_ids(frame, path, report)
    if "hashtags" in frame:
        frame["caption"] = [_with_hashtags(c, h) for c,
                            h in zip(frame.get("caption", [""] * len(frame)), frame["hashtags"], strict=True)]
        report.notes.append(f"the {chosen['hashtags']!r} column is "
                            "appended to each caption (hashtag features read the caption)")
    if "post_type" in frame:
        frame["is_video"] = [_is_video(value, path, row, chosen["post_type"]) for row,
                             value in enumerate(frame["post_type"], start=1)]
    frame["posted_at"] = frame["posted_at"].map(lambda v: v.strip() if isinstance(v, str) else v)
    try:
        # Meta's current export ("Publish time") writes dates month
        # first; an older or other export has no known order.
        meta = ("month-first",
                "as Meta writes 'Publish time'") if normalise(chosen["posted_at"]) == "publishtime" else None
        posts = validate_posts(frame[[c for c in CANONICAL if c in frame]], file=path,
                               date_format=date_format, report=report,
                               default_date_order=meta)
    except DataError as e:  # name the row as the file counts it and the field as the file spells it
        row = int(frame.index[e.row - 1]) + 1 if isinstance(e.row, int) else e.row
        raise DataError(e.message, file=path, row=row, field=chosen.get(e.field or "", e.field)) from e
    return attach_report(posts, report)


def _drop_stories(frame: pd.DataFrame, chosen: dict[str, str], report: LoadReport) -> pd.DataFrame:
    if "post_type" not in frame:
        return frame
    story = frame["post_type"].map(lambda v: normalise(v) in _STORY_TYPES if isinstance(v, str)
                                   else False).to_numpy(dtype=bool)
    if story.any():
        rows = ", ".join(str(r + 1) for r in np.flatnonzero(story)[:5])
        report.skipped[f"stories (rows {rows}{', ...' if story.sum() > 5 else ''}): not feed posts"] += int(
            story.sum())
    return frame.loc[~story]  # the index keeps each row's position in the file, for error messages


def _export_accounts(frame: pd.DataFrame, chosen: dict[str, str], path: Path, account: str | None,
                     report: LoadReport) -> list[str]:
    if "account" in frame:
        names = [str(v).strip().lower() if isinstance(v, str) and v.strip() else "" for v in frame["account"]]
        named = sorted(set(names) - {""})
        if account is not None and named and named != [account.lower()]:
            raise DataError(
                f"names account(s) {', '.join(named[:3])} in its "
                f"{chosen['account']!r} column but data.account is "
                f"{account!r}; remove data.account or fix the file", file=path, field=chosen["account"],
            )
        if "" in names and account is None:
            row = names.index("") + 1
            raise DataError("is empty; set data.account to name the account of a single-account export",
                            file=path, row=int(frame.index[row - 1]) + 1, field=chosen["account"])
        if "" in names:
            report.notes.append(f"empty {chosen['account']!r} cells filled with data.account {account!r}")
        return [name or str(account).lower() for name in names]
    if account is not None:
        report.notes.append(
            f"single-account export: account {account!r} from data.account (the file names no account)")
        return [account] * len(frame)
    report.notes.append(
        f"single-account export: account {path.stem!r} from the file name (the file names no account; "
                        "set data.account to name it)")
    return [path.stem] * len(frame)


def _export_post_ids(frame: pd.DataFrame, path: Path, report: LoadReport) -> list[str]:
    rows = [int(i) + 1 for i in frame.index]  # the file's data rows (stories dropped keep theirs)
    ids = [str(v).strip() if isinstance(v, str) else ""
           for v in frame["post_id"]] if "post_id" in frame else [""] * len(frame)
    links = frame["permalink"].tolist() if "permalink" in frame else [None] * len(frame)
    out, made = [], 0
    for row, post_id, link in zip(rows, ids, links, strict=True):
        if not post_id and isinstance(link, str) and (match := _SHORTCODE.search(link)):
            post_id = match.group(1)
        if not post_id:
            post_id, made = f"{path.stem}-row{row}", made + 1
        out.append(post_id)
    if made:
        report.notes.append(f"{made} post ids made from the row number (no Post ID or Permalink)")
    return out


def _with_hashtags(caption: object, hashtags: object) -> str:
    text = caption.strip() if isinstance(caption, str) else ""
    tags = hashtags.strip() if isinstance(hashtags, str) else ""
    if not tags or tags in text:
        return text
    return f"{text}\n{tags}" if text else tags


def _is_video(value: object, path: Path, row: int, column: str) -> bool:
    kind = normalise(value) if isinstance(value, str) else ""
    if kind in _VIDEO_TYPES:
        return True
    if kind in _PHOTO_TYPES or kind == "":
        return False
    raise DataError(f"{str(value)[:40]!r} is not a post type engage knows (photo, carousel, reel, video)",
                    file=path, row=row, field=column)


# -- Graph API JSON ---------------------------------------------------------------------------------------


def _read_json(file: Path, root: Path) -> Any:
    """The file's JSON within the bounds of engage/bounded.py (size, nesting, no link out of `root`)."""
    try:
        return read_json_bounded(file, root=root)
    except DataError as e:
        raise DataError(f"{e.message}; save the Graph API response again", file=file) from e


def _kind(document: Any) -> str:
    if isinstance(document, list):
        return "media" if document and all(isinstance(i, dict) and "id" in i for i in document) else "other"
    if not isinstance(document, dict):
        return "other"
    if "error" in document:
        return "error"
    data = document.get("data")
    if isinstance(data, list):
        if not data:
            return "empty"
        if all(isinstance(i, dict) and "name" in i and ("values" in i or "total_value" in i) for i in data):
            return "insights"
        if all(isinstance(i, dict) and "id" in i for i in data):
            return "media"
        return "other"
    if "id" in document and any(k in document for k in _MEDIA_KEYS):
        return "media"
    if "username" in document or "followers_count" in document:
        return "account"
    return "other"


def _metric_value(item: dict[str, Any]) -> object:
    if isinstance(item.get("total_value"), dict):
        return item["total_value"].get("value")
    values = item.get("values")
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        return values[-1].get("value")  # lifetime metrics hold one value; the last is the latest
    return None


def _read_metrics(items: list[dict[str, Any]], file: Path, media_id: str, unknown: Counter,
                  into: dict[str, dict[str, object]]) -> None:
    metrics = into.setdefault(media_id, {})
    names = {str(i.get("name")) for i in items}
    for item in items:
        name = str(item.get("name"))
        column = GRAPH_METRICS.get(name)
        if column is None:
            unknown[name] += 1
            continue
        if name == "views" and "impressions" in names:
            continue  # both present: impressions is the older, exact name
        value = _metric_value(item)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise DataError(f"insights of media {media_id}: {str(value)[:40]!r} is not a count", file=file,
                            field=name)
        previous = metrics.get(column)
        metrics[column] = value if previous is None else max(float(previous), float(value))  # type: ignore[arg-type]


def _media_id_of(items: list[dict[str, Any]], file: Path) -> str:
    for item in items:
        ident = str(item.get("id", ""))
        if "/insights/" in ident:
            return ident.split("/insights/")[0]
    digits = re.findall(r"\d{6,}", file.stem)
    if len(digits) == 1:
        return digits[0]
    raise DataError(
        "holds insights but does not say for which media (no 'id' like '{media-id}/insights/...'); "
                    "name the file after the media id, e.g. 17895695668004550.json", file=file)


def _load_graph(files: list[Path], root: Path, account: str | None) -> pd.DataFrame:
    report = LoadReport(source="insights", path=str(root))
    media: dict[str, dict[str, Any]] = {}
    insights: dict[str, dict[str, object]] = {}
    accounts: list[dict[str, Any]] = []
    unknown_metrics: Counter = Counter()
    base = root if root.is_dir() else root.parent
    for file in files:
        try:
            document = _read_json(file, base)
        except DataError as e:  # one unreadable response must not cost the others: skip it and name it
            if len(files) == 1:
                raise
            report.skip_file(file, e.message)
            continue
        kind = _kind(document)
        if kind == "media":
            items = document if isinstance(document, list) else document.get("data", [document])
            for position, item in enumerate(items, start=1):
                _add_media(media, item, file, position, report, insights, unknown_metrics)
        elif kind == "insights":
            _read_metrics(document["data"], file, _media_id_of(document["data"], file), unknown_metrics,
                          insights)
        elif kind == "account":
            accounts.append(document)
        else:
            report.skip({"error": "Graph API error responses", "empty": "empty pages"}.get(
                kind, "JSON files that are not media, insights or an account")
                        + f" ({file.name})")
    if unknown_metrics:
        report.notes.append(f"insight metrics not used: {', '.join(sorted(unknown_metrics))}")
    if not media:
        raise DataError("holds no media list page (GET /{ig-user-id}/media); save one next to the insights",
                        file=root)
    orphans = sorted(set(insights) - set(media))
    for media_id in orphans:
        report.skip(f"insights of media not in any media page ({media_id})")
    rows = [_media_row(item, insights.get(item["_id"], {})) for item in media.values()]
    frame = pd.DataFrame(rows)
    frame["account"] = _graph_accounts(frame, accounts, root, account, report)
    followers = {str(a.get("username", "")).lower(): a.get("followers_count") for a in accounts
                 if a.get("followers_count") is not None}
    if followers:
        frame["followers"] = frame["account"].map(followers)
        report.notes.append("followers from the account node (its count when saved, for every post)")
    missing = frame["likes"].isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError("has no like_count (nor a likes insight); request fields=like_count or metric=likes",
            file=frame["_file"].iloc[first], row=int(frame["_row"].iloc[first]), field="like_count")
    frame = sort_posts(frame).reset_index(drop=True)
    try:
        posts = validate_posts(frame[[c for c in CANONICAL if c in frame]], file=root)
    except DataError as e:  # name the JSON file, the media's place in its page and the API's field name
        position = int(e.row) - 1 if isinstance(e.row, int) else 0
        fields = {"posted_at": "timestamp", "likes": "like_count", "comments": "comments_count",
                  "post_id": "id"}
        raise DataError(e.message, file=frame["_file"].iloc[position], row=int(frame["_row"].iloc[position]),
                        field=fields.get(e.field or "", e.field)) from e
    return attach_report(posts, report)


def _add_media(media: dict[str, dict[str, Any]], item: dict[str, Any], file: Path, position: int,
               report: LoadReport,
               insights: dict[str, dict[str, object]], unknown: Counter) -> None:
    if not isinstance(item, dict) or not str(item.get("id", "")).strip():
        raise DataError("is a media item without an id", file=file, row=position, field="id")
    media_id = str(item["id"]).strip()
    if str(item.get("media_product_type", "")).upper() == "STORY":
        report.skip(f"stories: not feed posts ({media_id})")
        return
    embedded = item.get("insights")
    if isinstance(embedded, dict) and isinstance(embedded.get("data"), list):
        _read_metrics(embedded["data"], file, media_id, unknown, insights)
    entry = {**item, "_id": media_id, "_file": str(file), "_row": position}
    if media_id in media:  # the same media in two saved pages (a rerun): keep the one with more likes
        report.merged_duplicates += 1
        old = media[media_id]
        if float(entry.get("like_count") or -1) <= float(old.get("like_count") or -1):
            return
    media[media_id] = entry


def _media_row(item: dict[str, Any], metrics: dict[str, object]) -> dict[str, Any]:
    kind = str(item.get("media_product_type") or item.get("media_type") or "").upper()
    row = {
        "post_id": item["_id"], "posted_at": item.get("timestamp"), "caption": item.get("caption") or "",
        "likes": item.get("like_count", metrics.get("likes")),
        "comments": item.get("comments_count", metrics.get("comments")),
        "is_video": kind in ("VIDEO", "REELS"), "username": item.get("username"),
        "owner": (item.get("owner") or {}).get("id") if isinstance(item.get("owner"), dict) else None,
        "_file": item["_file"], "_row": item["_row"],
    }
    for column in INSIGHT_COUNTS:
        row[column] = metrics.get(column)
    return row


def _graph_accounts(frame: pd.DataFrame, nodes: list[dict[str, Any]], root: Path, account: str | None,
                    report: LoadReport) -> list[str]:
    by_id = {str(n.get("id")): str(n["username"]).lower() for n in nodes if n.get("id") and n.get("username")}
    names = [str(n["username"]).lower() for n in nodes if n.get("username")]
    fallback, why = None, ""
    if account is not None:
        fallback, why = account, "data.account"
    elif len(set(names)) == 1:
        fallback, why = names[0], "the account node"
    out = []
    for username, owner in zip(frame["username"], frame["owner"], strict=True):
        if isinstance(username, str) and username.strip():
            out.append(username.strip().lower())
        elif owner is not None and str(owner) in by_id:
            out.append(by_id[str(owner)])
        elif fallback is not None:
            out.append(fallback)
        else:
            fallback, why = (root.stem if root.is_file() else root.name), "the file or folder name"
            out.append(fallback)
    if why:
        report.notes.append(f"media without a username: account {fallback!r} from {why}"
                            + ("" if why != "the file or folder name" else " (set data.account to name it)"))
    return out


class InsightsOptions(BaseModel):
    """Options of the `insights` source (`data.account`, `data.date_format`)."""

    model_config = ConfigDict(extra="forbid")
    account: str | None = None  # the account of a single-account export that names none
    date_format: str | None = None  # day-first, month-first or a strptime format (None: detected per column)


def load_source(path: Path | None, options: InsightsOptions, *, progress: bool = True) -> pd.DataFrame:
    """The `insights` source of the registry (engage/data/sources.py)."""
    assert path is not None  # the registry refuses a missing path first
    return load_insights(path, account=options.account, date_format=options.date_format)
