"""The feed preview: thumbnails of each account's last photos, newest first, and the draft's consistency."""

from __future__ import annotations

import base64
import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from engage.model.draft import Draft
from engage.model.feed import FEED_PHOTOS, THUMBNAIL_PX, account_feeds, feed_preview, thumbnail


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (120, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG")
    return out.getvalue()


def _decode(url: str) -> Image.Image:
    assert url.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_a_thumbnail_is_a_square_jpeg_cropped_from_the_centre() -> None:
    image = _decode(thumbnail(_jpeg((200, 30, 30), (300, 100))))
    assert image.size == (THUMBNAIL_PX, THUMBNAIL_PX) and image.format == "JPEG"
    assert np.asarray(image)[THUMBNAIL_PX // 2, THUMBNAIL_PX // 2, 0] > 150


def test_each_accounts_feed_is_its_last_eight_photos_newest_first(tmp_path: Path, caplog) -> None:
    rows = []
    for i in range(11):  # 11 posts of anna: shade i, one video and one without a photo among them
        path = tmp_path / f"a{i}.jpg"
        path.write_bytes(_jpeg((i * 20, 0, 0)))
        rows.append({"account": "anna",
                     "posted_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=i),
                     "image": None if i == 9 else str(path), "is_video": i == 8})
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a photo")
    rows.append({"account": "ben", "posted_at": pd.Timestamp("2024-01-01", tz="UTC"), "image": str(broken),
                 "is_video": False})
    with caplog.at_level(logging.WARNING):
        feeds = account_feeds(pd.DataFrame(rows))
    reds = [int(np.asarray(_decode(url))[10, 10, 0]) for url in feeds["anna"]]
    assert len(reds) == FEED_PHOTOS
    # newest first: posts 10, 7, 6, 5, 4, 3, 2, 1 (9 has no photo, 8 is a video)
    assert [round(r / 20) for r in reds] == [10, 7, 6, 5, 4, 3, 2, 1]
    assert "ben" not in feeds and "1 photo(s) could not be read" in caplog.text


def test_the_preview_gives_the_drafts_consistency_and_where_the_grids_photos_come_from() -> None:
    features = pd.Series({"image_feed_similarity": 0.734567})
    norms = {"photo_consistency_p50": 0.81, "photo_consistency_p10": 0.6}
    assert feed_preview(Draft(account="anna"), features, norms) == {"source": "model", "consistency": 0.7346,
                                                                    "usual": 0.81,
                                                                    "off_style_below": 0.6}
    history = [{"posted_at": datetime(2024, 1, 1, tzinfo=UTC), "likes": 1, "image": _jpeg((20, 0, 0))}]
    sent = feed_preview(Draft(account="anna", history=history), pd.Series({"image_feed_similarity": np.nan}),
                        {})
    assert sent == {"source": "history", "consistency": None, "usual": None, "off_style_below": None}
