"""A draft post sent for scoring, as the model sees it
(the HTTP layer decodes base64 and uploads into this)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator

from engage.data.schema import INSIGHT_COUNTS
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
    outside = (f"must be between {EARLIEST:%Y-%m-%d} and "
               f"{LATEST:%Y-%m-%d}, in ISO 8601 (e.g. 2024-05-12T09:00:00Z)")
    if not EARLIEST.year <= value.year < LATEST.year:  # before converting: year 1 with an offset overflows
        raise ValueError(outside)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(outside)
    return value


#: An IANA time zone name, checked.
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(check_time_zone)]


def _check_account(value: str) -> str:
    if not value.strip():
        raise ValueError("must name the account; it is only white space")
    return value


#: A username: 1 to 100 characters, not all white space (the posts table would refuse it later).
Account = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_check_account)]


#: An earlier post's insight counts, when the account has them: each count model starts from the account's
#: trailing level of its count. Generated from the one count list (engage/data/schema.py INSIGHT_COUNTS), as
#: the API's ScoreResponse is from the target registry, so a new count column needs no field written here.
InsightCounts: type[BaseModel] = create_model(
    "InsightCounts",
    __doc__="An earlier post's insight counts, when the "
    "account has them (engage.data.schema.INSIGHT_COUNTS).",
    **{name: (int | None, Field(None, ge=0, le=10**10)) for name in INSIGHT_COUNTS},  # type: ignore[call-overload]
)


class HistoryPost(InsightCounts):  # type: ignore[misc,valid-type]
    """One of the account's earlier posts, for an account the model has not seen."""

    model_config = ConfigDict(extra="forbid")
    caption: str = Field("", max_length=MAX_CAPTION_CHARS)
    image: bytes | None = None
    posted_at: datetime
    likes: int = Field(ge=0, le=10**10)
    comments: int | None = Field(None, ge=0, le=10**10)

    _time = field_validator("posted_at")(_check_time)


def _missing(value: Any) -> bool:
    """None, NaN or NaT: a table's empty cell."""
    return value is None or (isinstance(value, float | pd.Timestamp | type(pd.NaT)) and pd.isna(value))


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

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *,
                    read_image: Callable[[str], bytes | None] | None = None,
                    ignore: tuple[str, ...] = ("row",)) -> Draft:
        """The one way a record becomes a draft: a table row (engage.batch, the MLflow pyfunc) or the fields
        of an HTTP request (engage/serving/parsing.py).

        Missing values (None, NaN, NaT: a table's empty cells) are left out, so the field takes its default;
        an `image` given as text is read by `read_image` (a path for batch scoring, base64 for the pyfunc);
        `posted_at` may be any time pandas reads. Columns in `ignore` (the table's own `row`) are skipped; any
        other unknown field is refused, as every check of the model is, with a pydantic `ValidationError`."""
        fields = {k: v for k, v in record.items() if k not in ignore and not _missing(v)}
        if isinstance(fields.get("image"), str):
            if read_image is None:
                raise TypeError("an image given as text needs read_image (a path or base64 reader)")
            fields["image"] = read_image(fields["image"])
        when = fields.get("posted_at")
        if when is not None and not isinstance(when, datetime):
            try:
                fields["posted_at"] = pd.Timestamp(when).to_pydatetime()
            except (ValueError, TypeError):
                pass  # pydantic says what is wrong with it
        return cls(**fields)
