"""The feature table's columns by family: what the real-data benchmark removes one at a time, and how the
count models split a prediction into the account's level and the draft's uplift
(engage/model/estimators.py)."""

from __future__ import annotations

import pandas as pd

from engage.data.schema import INSIGHT_COUNTS
from engage.features.caption import CAPTION_COLUMNS
from engage.features.duplicates import DUPLICATE_COLUMNS
from engage.features.history import MOMENTUM_COLUMNS
from engage.features.quality import QUALITY_COLUMNS

#: The feature table's columns by family: what the benchmark's ablations remove one at a time, and how the
#: count models split the prediction. The account's level (`LEVEL_FAMILIES`: what a post of this account
#: would get at that moment) comes from its history and the time; the draft's uplift from the rest (what
#: this photo and caption add to or take from that level). Embedding components are matched by prefix.
FEATURE_FAMILIES: dict[str, tuple[str, ...]] = {
    "history": ("likes_baseline", "comments_baseline", "likes_trend", "comments_trend", *MOMENTUM_COLUMNS,
                *(f"{count}_baseline" for count in INSIGHT_COUNTS), "n_earlier_posts", "followers",
                "sponsored_share", "posts_last_30_days"),
    "time": ("days_since_previous", "hour_utc", "weekday"),
    "caption_hand": (*CAPTION_COLUMNS, "hashtags_z", "caption_chars_z"),
    "caption_embedding": ("caption_pc",),
    "photo_embedding": ("photo_pc", "image_caption_similarity"),
    "photo_quality": tuple(QUALITY_COLUMNS),
    "feed_consistency": ("image_feed_similarity", "image_feed_max_similarity", "caption_feed_similarity",
                         "caption_feed_max_similarity"),
    "duplicates": tuple(DUPLICATE_COLUMNS),
    "format": ("sponsored", "is_video"),
}
#: The families of the account's level; every other family belongs to the draft's uplift.
LEVEL_FAMILIES: tuple[str, ...] = ("history", "time")
_PREFIXES = ("caption_pc", "photo_pc")


def feature_family(column: str) -> str:
    """The family of a feature column (`FEATURE_FAMILIES`); "other" for a column of none (a draft feature)."""
    key = next((p for p in _PREFIXES if column.startswith(p) and column[len(p):].isdigit()), column)
    for family, columns in FEATURE_FAMILIES.items():
        if key in columns:
            return family
    return "other"


def family_columns(columns: list[str] | pd.Index, families: list[str] | tuple[str, ...]) -> list[str]:
    """The `columns` that belong to any of `families` (names checked against `FEATURE_FAMILIES`)."""
    unknown = sorted(set(families) - set(FEATURE_FAMILIES))
    if unknown:
        raise KeyError(
            f"unknown feature family {', '.join(unknown)}; the families are {', '.join(FEATURE_FAMILIES)}")
    return [c for c in columns if feature_family(c) in families]
