"""The feed preview: how a draft would sit on the account's profile grid.

Instagram shows a profile as a grid three photos wide, newest first, so a new post lands top-left and the
account's last eight photos fill the rest of a 3x3 block. The advice engage stands on says to arrange the
feed so that it looks good as a grid; the preview shows that block, next to the feed-consistency figure
(the cosine of the draft's photo to the centroid of the feed's photos, `image_feed_similarity`).

Training keeps small thumbnails of each account's last `FEED_PHOTOS` photos in the bundle (the bundle
keeps vectors, not photos), served by `GET /v1/feed`; a draft sent with `history` gets its grid from the
history's photos, which the client already holds.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import ImageOps
from tqdm.auto import tqdm

from engage.embed.decoding import open_image
from engage.errors import DataError

log = logging.getLogger(__name__)

#: Photos beside the draft in the 3x3 preview.
FEED_PHOTOS = 8
#: Side of a stored thumbnail in pixels (a grid cell in
#: the studio is about 110 px wide; 2x for sharp screens).
THUMBNAIL_PX = 224


def thumbnail(source: bytes | str | Path, size: int = THUMBNAIL_PX) -> str:
    """The photo centre-cropped to a square, as a small JPEG `data:` URL (what the profile grid shows)."""
    image = ImageOps.fit(open_image(source), (size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _has_photo(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def account_feeds(posts: pd.DataFrame, n: int = FEED_PHOTOS, *,
                  progress: bool = False) -> dict[str, list[str]]:
    """Each account's last `n` photos (newest first) as
    thumbnails; an unreadable photo is left out and logged."""
    with_photo = posts[posts["image"].map(_has_photo) & ~posts["is_video"].astype(bool)]
    latest = with_photo.sort_values("posted_at", kind="stable").groupby("account", sort=True).tail(n)
    feeds: dict[str, list[str]] = {}
    failed: list[str] = []
    rows = latest.iloc[::-1]  # newest first, as the grid shows them
    for account, path in tqdm(zip(rows["account"], rows["image"], strict=True), total=len(rows),
                              desc="feed thumbnails",
                              unit="photo", disable=not progress or len(rows) < 200, mininterval=0.5):
        try:
            small = thumbnail(path)
        except DataError as e:
            failed.append(f"{path}: {e.message}")
            continue
        feeds.setdefault(str(account), []).append(small)
    if failed:
        log.warning("feed preview: %d photo(s) could not be read and are left out of the grid: %s%s",
                    len(failed),
                    "; ".join(failed[:3]), "" if len(failed) <= 3 else f"; and {len(failed) - 3} more")
    return feeds


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else round(number, 4)


def feed_preview(draft: Any, features: pd.Series, norms: dict[str, float]) -> dict[str, Any]:
    """The figures beside the draft's grid: its feed consistency, the usual consistency of posts and the level
    below which a photo is off-style, and where the grid's photos come from (the request's history, which the
    client holds, or the model's stored feed, served by `GET /v1/feed`). The photos are not in the answer to a
    draft: an answer stays small and never repeats what was sent."""
    return {
        "source": "history" if draft.history else "model",
        "consistency": _number(features.get("image_feed_similarity")),
        "usual": _number(norms.get("photo_consistency_p50")),
        "off_style_below": _number(norms.get("photo_consistency_p10")),
    }
