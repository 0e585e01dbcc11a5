"""A draft post sent for scoring, as the model sees it (the HTTP layer decodes base64 and uploads into this)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from engage.zones import check_time_zone

#: Instagram refuses captions over 2,200 characters, so a longer draft could never be posted.
MAX_CAPTION_CHARS = 2200
#: Only the last posts of a history shape the features; more than this is refused with a 4xx.
MAX_HISTORY_POSTS = 500
#: Dates outside this range are mistakes (and beyond what the time features can represent).
EARLIEST, LATEST = datetime(2010, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def _check_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not EARLIEST.year <= value.year < LATEST.year:  # before converting: year 1 with an offset overflows
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, in ISO 8601 (e.g. 2024-05-12T09:00:00Z)")
    return value


#: An IANA time zone name, checked.
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_time_zone)]


def _check_account(value: str) -> str:
    if not value.strip():
        raise ValueError("must name the account; it is only white space")
    return value


#: A username: 1 to 100 characters, not all white space (the posts table would refuse it later).
Account = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_check_account)]


class InsightCounts(BaseModel):
    """An earlier post's insight counts, when the account has them: each count model starts from the
    account's trailing level of its count (engage/data/schema.py INSIGHT_COUNTS)."""

    impressions: int | None = Field(None, ge=0, le=10**10)
    reach: int | None = Field(None, ge=0, le=10**10)
    saves: int | None = Field(None, ge=0, le=10**10)
    shares: int | None = Field(None, ge=0, le=10**10)
    profile_visits: int | None = Field(None, ge=0, le=10**10)
    follows: int | None = Field(None, ge=0, le=10**10)
    link_clicks: int | None = Field(None, ge=0, le=10**10)


class HistoryPost(InsightCounts):
    """One of the account's earlier posts, for an account the model has not seen."""

    model_config = ConfigDict(extra="forbid")
    caption: str = Field("", max_length=MAX_CAPTION_CHARS)
    image: bytes | None = None
    posted_at: datetime
    likes: int = Field(ge=0, le=10**10)
    comments: int | None = Field(None, ge=0, le=10**10)

    _time = field_validator("posted_at")(_check_time)


class Draft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: Account
    caption: str = Field("", max_length=MAX_CAPTION_CHARS)
    image: bytes | None = None  # raw JPEG/PNG/WebP bytes
    posted_at: datetime | None = None  # default: now
    followers: int | None = Field(None, ge=0, le=10**10)
    sponsored: bool | None = None
    history: list[HistoryPost] | None = Field(None, max_length=MAX_HISTORY_POSTS)

    _time = field_validator("posted_at")(_check_time)
