"""Posts from an Instaloader dump: the folders that `instaloader profile NAME` (or `#hashtag`) writes.

The dump is read as files, never through the `instaloader` package (which may go to the network):

1. every `*.json.xz` / `*.json` under the path is decoded with lzma/json; a file that cannot be used (invalid
   or empty JSON, a truncated `.json.xz`, a wrapper without its post node, a post without a timestamp) is
   skipped and named in the `LoadReport` with the reason, or, with `strict=True`, an error naming it;
2. each file is classified by its shape: a post (a shortcode or id and a timestamp), a profile's own
   metadata file (`NAME_ID.json.xz`, read for follower counts), or something else (comments files, story
   items), which is skipped and counted in the `LoadReport`;
3. both post node shapes Instaloader saves are mapped onto the canonical columns: GraphQL nodes
   (`edge_media_preview_like.count`, `taken_at_timestamp`, `owner.username`, ...) and iPhone-API nodes
   (`like_count`, `taken_at`, `user.username`, ...), usually nested as `node["iphone_struct"]`. A count
   Instagram hid (written as -1, or any like count under `like_and_view_counts_disabled`) is missing,
   not zero: the post stays as history context and is left out of that count's labels; the report
   counts hidden counts;
4. the account comes from the post's owner, else from the profile metadata (owner id), else from the
   folder name; followers from the owner node, else from the profile metadata, else missing;
5. snapshots of the same post (`.json` next to `.json.xz`, or one post under several hashtag folders) are
   merged into one row holding the highest counts, and counted in the report;
6. `validate_posts` gives the canonical table.

See docs/data.md for the field-to-column mapping.
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from engage.bounded import read_json_bounded, regular_file_inside
from engage.data.instagram_nodes import (
    TIMESTAMP_PATHS,
    dig,
    first_present,
    iphone_struct,
    node_post_id,
    node_shortcode,
    node_timestamp,
)
from engage.data.schema import CANONICAL, LoadReport, attach_report, sort_posts, validate_posts
from engage.errors import DataError

#: Show a progress bar when a dump has more metadata files than this.
PROGRESS_MIN_FILES = 200

_JSON_SUFFIXES = (".json.xz", ".json")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
# Folders Instaloader names after a hashtag (#tag), a location (%id) or :feed/:saved/:stories hold many
# accounts' posts, so their name is not an account.
_MANY_ACCOUNT_PREFIXES = ("#", "%", ":")
_NUMBERED = re.compile(r"(?P<stem>.+)_(?P<index>\d+)")

_FIX_CORRUPT = (
    "the file is corrupt or truncated (an interrupted download?): delete it (and the post's images) "
    "to leave the post out, or download the profile again with instaloader to replace it"
)


@dataclass
class _Post:
    """The fields of one post file, before accounts are resolved and snapshots merged."""

    file: str
    folder: str
    post_id: str
    posted_at: float
    caption: str
    likes: int | None  # None: the owner hid the like count
    comments: int | None
    hidden_likes: bool
    hidden_comments: bool
    is_video: bool
    sponsored: bool | None
    image: str | None
    owner_username: str | None
    owner_id: str | None
    owner_followers: int | None


@dataclass
class _Profile:
    """A profile's own metadata file (`NAME_ID.json.xz`)."""

    username: str
    id: str | None
    followers: int | None


def load_dump(path: str | Path, *, strict: bool = False, progress: bool = True) -> pd.DataFrame:
    """The canonical posts table from an Instaloader dump directory.

    `path` may hold one folder per profile, be one profile folder itself, or be a hashtag/location folder
    holding many accounts' posts. A file that cannot be used (corrupt, truncated, no post node, a post
    without timestamp or owner) is skipped and named in the report (`report.skipped_files`); with
    `strict=True` it is a `DataError` naming the first such file. A path with no usable post is always
    a `DataError`.
    """
    root = Path(path)
    if not root.exists():
        raise DataError("does not exist; point data.path at the folder Instaloader wrote", file=root)
    if not root.is_dir():
        raise DataError(
            "is not a directory; point data.path at the folder Instaloader wrote (one folder per profile)",
            file=root,
        )
    root = root.resolve()
    report = LoadReport(source="instaloader", path=str(root))
    files = _metadata_files(root, report)
    if not files:
        anything = any(p.is_file() for p in root.rglob("*"))
        raise DataError(
            "holds no Instaloader metadata files (*.json.xz or *.json); "
            + (
                "download again without --no-metadata-json so the post metadata is saved"
                if anything
                else "it is empty: run `instaloader profile NAME` into it first"
            ),
            file=root,
        )

    posts: list[_Post] = []
    profiles: list[_Profile] = []
    listings: dict[Path, dict[str, list[tuple[int, str]]]] = {}
    bar = tqdm(files, desc="reading Instaloader dump", unit="file",
               disable=not progress or len(files) <= PROGRESS_MIN_FILES)
    for file in bar:
        try:
            node, node_type = _unwrap(_read_json(file, root), file)
            if node is None:
                report.skip("not a post: a JSON list or value, not an object (e.g. a *_comments.json file)")
                continue
            kind = _classify(node, node_type)
            if kind == "profile":
                profiles.append(_parse_profile(node, file))
                report.skip("profile metadata file (not a post; read for follower counts)")
            elif kind == "post":
                if file.parent not in listings:
                    listings[file.parent] = _image_index(file.parent, root, report)
                posts.append(_parse_post(node, file, listings[file.parent]))
            else:
                report.skip(kind)
        except DataError as e:
            # One broken file must not cost the whole dump: skip it, name it, go on (strict: stop here).
            if strict:
                raise
            report.skip_file(file, _reason(e))
        except (RecursionError, MemoryError, ValueError, TypeError, AttributeError) as e:
            # A shape no check above foresaw is still this one file's fault, not the dump's.
            if strict:
                raise DataError(f"cannot be used ({type(e).__name__}: {str(e)[:200]})", file=file) from e
            report.skip_file(file, f"cannot be used ({type(e).__name__}: {str(e)[:200]})")
    if not posts:
        skipped = "; ".join([f"{count} {reason}" for reason, count in sorted(report.skipped.items())]
                            + [f"{file}: {reason}" for file, reason in report.skipped_files[:3]])
        raise DataError(
            f"holds {len(files)} metadata file(s) but no post ({skipped}); "
            "download the posts themselves with `instaloader profile NAME` (without --no-posts)",
            file=root,
        )

    frame = _resolve_accounts(posts, profiles)
    frame, report.merged_duplicates = _merge_snapshots(frame)
    unknown = frame["account"].isna()
    for file, folder in frame.loc[unknown, ["file", "folder"]].itertuples(index=False):
        error = DataError(
            "the post has no owner username (nor a profile file "
            f"matching its owner id) and lies in {folder!r}, "
            "a hashtag/location folder holding many accounts; download it with "
            "a recent instaloader (which saves owner.username) or move the file "
            "into its account's folder",
            file=file, field="owner.username",
        )
        if strict:
            raise error
        report.skip_file(file, _reason(error))
    frame = frame[~unknown]
    if frame.empty:
        raise DataError(f"holds no post whose account is known ({report.skipped_files[0][1]})", file=root)
    frame = sort_posts(frame)
    for column in ("likes", "comments"):
        # Counted after merging: a post hidden in one snapshot and known in another is not hidden.
        hidden = int((frame[column].isna() & frame[f"hidden_{column}"].astype(bool)).sum())
        if hidden:
            report.hidden_counts[column] = hidden
    posts_table = validate_posts(frame[[c for c in CANONICAL if c in frame]], file=root, hidden_likes=True)
    return attach_report(posts_table, report)


def _reason(error: DataError) -> str:
    """A skipped file's reason: the error's message with the field, without the file (named beside it)."""
    return f"field '{error.field}': {error.message}" if error.field else error.message


def _metadata_files(root: Path, report: LoadReport) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(names):
            if not name.endswith(_JSON_SUFFIXES):
                continue
            if name.startswith("."):
                # macOS "._x.json" resource forks and other hidden files are not Instaloader's.
                report.skip("hidden file")
                continue
            files.append(Path(directory) / name)
    return files


def _read_json(file: Path, root: Path) -> Any:
    """The file's JSON, bounded (engage/bounded.py): a compression bomb, a nesting bomb, a link out of the
    dump or a device is a `DataError` naming the file, skipped like any broken file."""
    try:
        return read_json_bounded(file, root=root)
    except DataError as e:
        raise DataError(f"{e.message}; {_FIX_CORRUPT}", file=file) from e


def _unwrap(data: Any, file: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Instaloader wraps the node: {"node": {...}, "instaloader": {"node_type": "Post", ...}}."""
    if isinstance(data, dict) and "instaloader" in data and not isinstance(data.get("node"), dict):
        raise DataError(
            f"has Instaloader's wrapper but no node object (the post itself is missing); {_FIX_CORRUPT}",
                        file=file, field="node")
    if isinstance(data, dict) and isinstance(data.get("node"), dict):
        meta = data.get("instaloader")
        node_type = meta.get("node_type") if isinstance(meta, dict) else None
        return data["node"], node_type if isinstance(node_type, str) else None
    if isinstance(data, dict):
        return data, None  # very old Instaloader versions saved the bare node
    return None, None


def _classify(node: dict[str, Any], node_type: str | None) -> str:
    """'post', 'profile', or the reason the file is skipped."""
    if node_type == "Profile" or (node_type is None and _looks_like_profile(node)):
        return "profile"
    if node_type == "Post":
        return "post"  # declared a post: missing fields are errors, not skips
    if node_type is not None:
        return f"not a post: Instaloader node_type {node_type}"
    if node_post_id(node) is not None and node_timestamp(node) is not None:
        return "post"
    return "not a post: no shortcode/id and timestamp"


def _looks_like_profile(node: dict[str, Any]) -> bool:
    return isinstance(node.get("username"),
                      str) and node_timestamp(node) is None and node_shortcode(node) is None


#: What Instagram writes as a count the owner hid.
HIDDEN_COUNT = -1


def _count(found: tuple[str, Any], *, file: Path, hidden: bool = False) -> int | None:
    """A count from a node; None when missing or, where `hidden` allows it, hidden (-1). A present value
    that is not a whole number >= 0 is an error naming the field."""
    field, value = found
    if value is None or (hidden and not isinstance(value,
                                                   bool) and value in (HIDDEN_COUNT, str(HIDDEN_COUNT))):
        return None
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0 or number != int(number) or number > 2**62:
        raise DataError(f"{str(value)[:40]!r} is not a count (a whole number >= 0); {_FIX_CORRUPT}",
                        file=file, field=field)
    return int(number)


def _parse_post(node: dict[str, Any], file: Path, images: dict[str, list[tuple[int, str]]]) -> _Post:
    iphone = iphone_struct(node)
    post_id = node_post_id(node)
    if post_id is None:
        raise DataError(f"the post has no shortcode or id; {_FIX_CORRUPT}", file=file, field="shortcode")

    time_field, stamp = first_present(node, *TIMESTAMP_PATHS)
    if stamp is None:
        raise DataError(f"the post has no timestamp; {_FIX_CORRUPT}", file=file, field="taken_at_timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        raise DataError(f"{str(stamp)[:40]!r} is not an epoch timestamp; {_FIX_CORRUPT}", file=file,
                        field=time_field)

    found_likes = first_present(
        node,
        ("edge_media_preview_like", "count"),
        ("edge_liked_by", "count"),
        ("like_count",),
        ("likes", "count"),  # Instaloader < 4
        ("iphone_struct", "like_count"),
    )
    disabled = node.get("like_and_view_counts_disabled") is True or iphone.get(
        "like_and_view_counts_disabled") is True
    # With counts disabled, whatever count the node still carries (0, -1) is not what the audience did.
    likes = None if disabled else _count(found_likes, file=file, hidden=True)
    if likes is None and not disabled and found_likes[1] is None:
        raise DataError(
            "the post has no like count (looked for edge_media_preview_like.count, edge_liked_by.count, "
            "like_count, iphone_struct.like_count) and does not say the owner hid it "
            "(like_and_view_counts_disabled); the file is incomplete: download the post again",
            file=file, field="likes",
        )
    comments_paths: list[tuple[str | int, ...]] = [
        ("edge_media_to_comment", "count"),
        ("edge_media_to_parent_comment", "count"),
        ("comment_count",),
        ("comments", "count"),  # Instaloader < 4
        ("iphone_struct", "comment_count"),
    ]
    if not isinstance(node.get("comments"), dict):
        comments_paths.insert(3, ("comments",))  # the count Instaloader copies to the top-level node
    found_comments = first_present(node, *comments_paths)
    comments = _count(found_comments, file=file, hidden=True)

    owner: dict[str, Any] = node["owner"] if isinstance(node.get("owner"), dict) else {}
    found = node.get("user") if isinstance(node.get("user"), dict) else iphone.get("user")
    user: dict[str, Any] = found if isinstance(found, dict) else {}
    username = owner.get("username") or user.get("username")
    owner_id = first_present(owner, ("id",),
                             ("pk",))[1] or first_present(user, ("pk",), ("id",), ("pk_id",))[1]
    followers = _count(
        first_present(
            {"owner": owner, "user": user},
            ("owner", "edge_followed_by", "count"),
            ("owner", "follower_count"),
            ("user", "follower_count"),
            ("user", "edge_followed_by", "count"),
        ),
        file=file,
    )

    return _Post(
        file=str(file),
        folder=file.parent.name,
        post_id=post_id,
        posted_at=float(stamp),
        caption=_caption(node, iphone),
        likes=likes,
        comments=comments,
        hidden_likes=likes is None,
        hidden_comments=comments is None and found_comments[1] is not None,
        is_video=_is_video(node, iphone),
        sponsored=_sponsored(node, iphone),
        image=_first_image(file, images),
        owner_username=str(username).strip().lower() if username else None,
        owner_id=str(owner_id) if owner_id not in (None, "") else None,
        owner_followers=followers,
    )


def _caption(node: dict[str, Any], iphone: dict[str, Any]) -> str:
    # GraphQL edges first (what Instaloader's Post.caption
    # reads), then the flat caption, then the iPhone node.
    candidates = [
        dig(node, "edge_media_to_caption", "edges", 0, "node", "text"),
        node.get("caption"),
        dig(node, "caption", "text"),
        dig(iphone, "caption", "text"),
    ]
    return next((text for text in candidates if isinstance(text, str)), "")


def _is_video(node: dict[str, Any], iphone: dict[str, Any]) -> bool:
    if isinstance(node.get("is_video"), bool):
        return node["is_video"]
    media_type = node.get("media_type", iphone.get("media_type"))
    return media_type == 2  # iPhone API: 1 image, 2 video, 8 carousel


def _sponsored(node: dict[str, Any], iphone: dict[str, Any]) -> bool | None:
    """True/False from the paid-partnership fields when the node has them; None (unknown) otherwise."""
    sponsors = dig(node, "edge_media_to_sponsor_user", "edges")
    tags = iphone.get("sponsor_tags")
    flags = [node.get("is_paid_partnership"), iphone.get("is_paid_partnership")]
    if (isinstance(sponsors, list) and sponsors) or (isinstance(tags, list) and tags) or True in flags:
        return True
    if isinstance(sponsors, list) or isinstance(tags, list) or False in flags:
        return False
    return None


def _image_index(directory: Path, root: Path, report: LoadReport) -> dict[str, list[tuple[int, str]]]:
    """Post stem -> [(carousel index, file name)]: `X.jpg` is (0, ...) of X, `X_2.jpg` is (2, ...) of X.

    A photo that is a link out of the dump, or not a regular file, is left out and named in the report: it
    would otherwise be embedded, kept as a thumbnail in the bundle and served by /v1/feed."""
    index: dict[str, list[tuple[int, str]]] = defaultdict(list)
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            base, dot, suffix = name.rpartition(".")
            if not dot or f".{suffix.lower()}" not in _IMAGE_SUFFIXES:
                continue
            if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                why = regular_file_inside(entry.path, root)
                if why is not None:
                    report.skip_file(entry.path, f"photo {why}")
                    continue
            index[base].append((0, name))
            numbered = _NUMBERED.fullmatch(base)
            if numbered:
                index[numbered["stem"]].append((int(numbered["index"]), name))
    return index


def _first_image(file: Path, images: dict[str, list[tuple[int, str]]]) -> str | None:
    stem = file.name.removesuffix(".xz").removesuffix(".json")
    found = images.get(stem)
    if not found:
        return None  # video not downloaded, expired media, --no-pictures: not an error
    return str(file.parent / min(found)[1])


def _parse_profile(node: dict[str, Any], file: Path) -> _Profile:
    followers = _count(
        first_present(node, ("edge_followed_by", "count"), ("followers",), ("follower_count",),
                      ("iphone_struct", "follower_count")),
        file=file,
    )
    profile_id = node.get("id", node.get("pk"))
    return _Profile(
        username=str(node["username"]).strip().lower(),
        id=str(profile_id) if profile_id not in (None, "") else None,
        followers=followers,
    )


def _resolve_accounts(posts: list[_Post], profiles: list[_Profile]) -> pd.DataFrame:
    """account: owner username, else the profile with the owner's id, else the folder (unless it holds many
    accounts); followers: owner node, else the profile metadata file (highest if several), else missing."""
    username_by_id = {p.id: p.username for p in profiles if p.id is not None}
    followers_by_username: dict[str, int] = {}
    for profile in profiles:
        if profile.followers is not None:
            followers_by_username[profile.username] = max(profile.followers,
                                                          followers_by_username.get(profile.username, 0))

    rows = []
    for post in posts:
        account = post.owner_username or (username_by_id.get(post.owner_id) if post.owner_id else None)
        if account is None and not post.folder.startswith(_MANY_ACCOUNT_PREFIXES):
            account = post.folder.strip().lower() or None
        followers = post.owner_followers
        if followers is None and account is not None:
            followers = followers_by_username.get(account)
        rows.append({**asdict(post), "account": account, "followers": followers})
    return pd.DataFrame(rows)


def _merge_snapshots(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per post: the snapshot with the most likes (then comments); fields it lacks (image,
    followers, ...) are taken from the post's other snapshots."""
    frame = frame.assign(_comments_rank=frame["comments"].fillna(-1).astype("int64"))
    frame = frame.sort_values(["likes", "_comments_rank", "file"], ascending=[False, False, True],
                              kind="stable")
    merged = len(frame) - frame["post_id"].nunique()
    if merged:
        frame = frame.groupby("post_id", sort=False).first().reset_index()  # first non-missing per column
    return frame.drop(columns="_comments_rank"), merged
