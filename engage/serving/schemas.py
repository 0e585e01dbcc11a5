"""The HTTP API's request and response bodies, with the examples shown on `/docs`.

Requests carry images as base64 text (JSON) or as a file (multipart, see `FORM_SCHEMA`);
`engage.serving.parsing` turns them into the `engage.model.draft.Draft` the model scores, whose limits these
schemas repeat so that `/docs` shows them. The scoring responses are the `Scorer`'s typed answers
(engage/scoring/answers.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from engage.data.schema import OUTCOME_COUNTS
from engage.model.draft import (
    EARLIEST,
    LATEST,
    MAX_CAPTION_CHARS,
    MAX_HISTORY_POSTS,
    Account,
    InsightCounts,
    TimeZoneName,
)
from engage.model.targets import COUNT_TARGETS, TARGETS
from engage.scoring.answers import Comparison, ScoreAnswer

#: What /v1/compare can rank by: any count target (the model must have it).
Goal = Literal.__getitem__(COUNT_TARGETS)  # type: ignore[attr-defined]

#: Drafts in one /v1/compare request.
MIN_COMPARE, MAX_COMPARE = 2, 10
IMAGE_HELP = "the photo: a JPEG, PNG or WebP file, base64-encoded (a `data:image/...;base64,` URL also works)"

# A 1x1 white JPEG, small enough to show in the examples.
EXAMPLE_IMAGE = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsL"
    "DBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/"
    "wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q=="
)


class _Body(BaseModel):
    # An unknown field is a typo the client should hear about, not something to ignore.
    model_config = ConfigDict(extra="forbid")


class HistoryPostIn(_Body, InsightCounts):
    """One of the account's earlier posts, sent for an account the model does not know."""

    caption: str = Field("", max_length=MAX_CAPTION_CHARS)
    image: str | None = Field(None, description=IMAGE_HELP)
    posted_at: datetime = Field(description="when it was posted (ISO 8601)")
    likes: int = Field(ge=0, le=10**10)
    comments: int | None = Field(None, ge=0, le=10**10)


class DraftIn(_Body):
    """A draft without its account (the drafts of a comparison share one account)."""

    caption: str = Field("", max_length=MAX_CAPTION_CHARS,
                         description="at most 2,200 characters, Instagram's limit")
    image: str | None = Field(None, description=IMAGE_HELP)
    posted_at: datetime | None = Field(None, description="when it would be posted (ISO 8601); default: now")
    followers: int | None = Field(None, ge=0, le=10**10, description="the account's follower count")
    sponsored: bool | None = Field(None, description="whether the post is paid for by a brand")
    history: list[HistoryPostIn] | None = Field(
        None, max_length=MAX_HISTORY_POSTS,
        description="the account's recent posts (at most "
        f"{MAX_HISTORY_POSTS}); only needed for an account the "
        "model has not seen, which is otherwise scored with population priors",
    )


class ScoreRequest(DraftIn):
    """One draft to score."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "account": "anna.bakes", "caption": "Sunday sourdough, crumb shot #bread #baking",
            "image": EXAMPLE_IMAGE, "posted_at": "2024-05-12T09:00:00Z", "followers": 5400,
            "sponsored": False,
        }]},
    )
    account: Account = Field(description="the account (username) that would post it")


class CompareRequest(_Body):
    """Several drafts of one account, to rank."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "account": "anna.bakes", "best_hour": True, "goal": "saves",
            "drafts": [{"caption": "Sunday sourdough #bread"},
                       {"caption": "Sunday sourdough " + "#bread " * 25}],
        }]},
    )
    account: Account
    drafts: list[DraftIn] = Field(min_length=MIN_COMPARE, max_length=MAX_COMPARE)
    goal: Goal = Field("likes",  # type: ignore[valid-type]
                       description="the count to rank the drafts by (and to pick the best hour for): "
                       + "; ".join(f"{n} ({TARGETS[n].goal})" for n in COUNT_TARGETS))
    best_hour: bool = Field(False,
                            description="also find the best hour in the next 7 days to post the top draft")
    time_zone: TimeZoneName | None = Field(
        None,
        description="IANA time zone (e.g. Europe/Berlin) whose hours the best hour is given in; default: the "
        "account's zone set on the server (serve.py "
        "--account-time-zone), else the server's --time-zone (UTC)")
    # The account's, as in /v1/score: they apply to every draft (and to the best-hour search) unless a draft
    # sends its own.
    followers: int | None = Field(None, ge=0, le=10**10,
                                  description="the account's follower count, for every draft")
    history: list[HistoryPostIn] | None = Field(
        None, max_length=MAX_HISTORY_POSTS,
        description="the account's recent posts (at most "
        f"{MAX_HISTORY_POSTS}), for every draft that sends none; "
        "only needed for an account the model has not seen",
    )


# The answers are the scorer's own typed results (engage/scoring/answers.py), served as they are.
ScoreResponse = ScoreAnswer
CompareResponse = Comparison


class FeedPhotos(BaseModel):
    account: str
    photos: list[str] = Field(
        description="the account's last (up to) eight photos known to the model, newest first, as "
        "small square JPEG data: URLs; with a draft top-left they make the 3x3 block of the profile grid")


class TargetInfo(BaseModel):
    name: str
    label: str = Field(description="how the studio names it")
    goal: str = Field(description="the creator's goal it measures")
    description: str


class Targets(BaseModel):
    targets: list[TargetInfo] = Field(description="the count targets this model predicts, in registry order")
    default_goal: str


class ErrorDetail(BaseModel):
    field: str | None = Field(
        description="the request field at fault (e.g. caption, history[3].likes), if any")
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer. Never contains the submitted data."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"field": "image", "message": "is not valid base64; ..."}}]})
    error: ErrorDetail | list[ErrorDetail]


class Health(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str
    model: str | None = None
    version: str | None = None
    embedder: str | None = None
    batching: dict[str, int | float] | None = Field(
        None, description="dynamic batching: max_batch_size, max_wait_ms, and the batches run so far")
    vector_cache: dict[str, int] | None = Field(
        None, description="photos and captions whose vectors are kept: max_items, items, hits, misses")
    error: str | None = Field(None, description="why the model is not being served, when it failed to load")


class Accounts(BaseModel):
    accounts: list[str] = Field(description="accounts the model knows, sorted")


class Reloaded(BaseModel):
    status: str = "reloaded"
    previous_version: str | None
    version: str
    embedder: str


#: The multipart/form-data variant of ScoreRequest, for /docs (FastAPI cannot derive it from a manual body).
FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["account"],
    "properties": {
        "account": {"type": "string", "minLength": 1, "maxLength": 100},
        "caption": {"type": "string", "maxLength": MAX_CAPTION_CHARS},
        "image": {"type": "string", "format": "binary", "description": "the photo file (JPEG, PNG or WebP)"},
        "posted_at": {"type": "string", "format": "date-time",
                      "description": "between 2010-01-01 and 2200-01-01"},
        "followers": {"type": "integer", "minimum": 0, "maximum": 10**10},
        "sponsored": {"type": "boolean"},
        "history": {"type": "string", "description": "JSON array of history posts, as in the JSON body"},
    },
}


#: Hours after publication an outcome may be stated at: up to five years.
MAX_AGE_HOURS = 24 * 366 * 5


class OutcomeIn(_Body):
    """What a published draft did: its post and its counts
    at a stated age (24 h and 7 days are two records)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "score_id": "3f1c0b6d2a6e4c1f9f0e5b7a8c9d0e1f", "post_id": "C7xYz12AbCd",
        "posted_at": "2024-05-12T09:03:00Z",
        "age_hours": 24, "likes": 231, "comments": 12}]})
    score_id: str | None = Field(None, min_length=1, max_length=40,
                                 description="the score_id of the /v1/score or "
        "/v1/compare answer for the draft that was published; may be left out once the post "
                                 "is linked (a later age of the same post)")
    post_id: str | None = Field(None, min_length=1, max_length=200,
                                description="the published post's id (shortcode)")
    permalink: str | None = Field(None, min_length=1, max_length=500,
                                  description="the post's Instagram link; "
                                  "stands for post_id when that is left out")
    posted_at: datetime | None = Field(None,
                                       description="when the post was published (required the first time)")
    age_hours: float = Field(gt=0, le=MAX_AGE_HOURS, allow_inf_nan=False,
                             description="hours after publication the counts were read (e.g. 24, 168)")

    @field_validator("score_id", "post_id", "permalink")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("has control characters; ids and links are printable text")
        return value

    @field_validator("posted_at")
    @classmethod
    def _published(cls, value: datetime | None) -> datetime | None:
        # The year first: converting year 1 or 9999 with an offset to UTC overflows.
        if value is None:
            return None
        if not EARLIEST.year <= value.year < LATEST.year:
            raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: OutcomeIn with one optional count per outcome count, by its name.
OutcomeRequest = create_model(  # type: ignore[call-overload]  # keyword fields built from OUTCOME_COUNTS
    "OutcomeRequest", __base__=OutcomeIn,
    **{name: (int | None, Field(None, ge=0, le=10**12, description=f"the post's {name} at that age"))
       for name in OUTCOME_COUNTS},
)


class OutcomeRecorded(BaseModel):
    outcome_id: int
    score_id: str
    post_id: str
    age_hours: float
    counts: dict[str, int] = Field(description="the counts recorded, by name")


class TargetAccuracy(BaseModel):
    target: str
    posts: int = Field(description="published drafts with this count recorded")
    mae: float | None = Field(description="mean absolute error of engage's expected count")
    baseline_mae: float | None = Field(
        description="mean absolute error of the account's own trailing average "
                                       "(what it would have said)")
    coverage: float | None = Field(description="share of actual counts inside engage's prediction interval")
    ranked_pairs: int = Field(
        description="pairs of published drafts of one account with different actual counts")
    ranked_right: float | None = Field(
        description="share of those pairs where the better one was predicted higher "
                                       "(ranked first)")
    compared_right: float | None = Field(
        description="of comparisons with two or more published drafts, the share "
                                         "whose top-ranked draft did best")


class AccuracyPoint(BaseModel):
    score_id: str
    post_id: str
    posted_at: datetime
    age_hours: float
    target: str
    expected: float
    low: float | None
    high: float | None
    actual: float
    trailing: float | None = Field(description="the account's trailing average at scoring time")


class Accuracy(BaseModel):
    account: str | None = Field(description="the account, or null for every account")
    age_hours: float | None = Field(description="the age compared at; null: each post's latest record")
    scored: int = Field(description="drafts scored for the account (published or not)")
    published: int = Field(description="scored drafts linked to a published post with an outcome")
    targets: list[TargetAccuracy]
    points: list[AccuracyPoint] = Field(
        description="predicted against actual, one per published draft and count")


# -- what /docs shows beside the models: the error answers and the request bodies' examples ------------------

#: The error answers every scoring route may give.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse,
          "description": "a body that cannot be decoded (not JSON, not UTF-8, nested too "
          "deeply, a broken form), or an image that is not base64, not a "
                                                 "decodable photo, a bomb or a strip thinner than 1:20"},
    401: {"model": ErrorResponse,
          "description": "missing or wrong X-API-Key (only when the server has API keys)"},
    403: {"model": ErrorResponse,
          "description": "an account the API key is not scoped to (key file, docs/security.md)"},
    408: {"model": ErrorResponse,
          "description": "the request body stalled (no byte for 15 s, or over 60 s in all)"},
    413: {"model": ErrorResponse, "description": "request body over 10 MB"},
    415: {"model": ErrorResponse,
          "description": "a body that is neither JSON nor a form, or a Content-Encoding "
                                                 "other than identity"},
    431: {"model": ErrorResponse, "description": "over 100 request headers or 16 KB of them"},
    422: {"model": ErrorResponse,
          "description": "a well-formed body that is not a valid request: unknown fields, "
          "wrong types, caption over 2,200 characters, history over 500 posts"},
    503: {"model": ErrorResponse,
          "description": "model still loading, or too many requests (see Retry-After)"},
}

SCORE_EXAMPLES = {
    "known account": {
        "summary": "A draft with a photo, for an account the model knows",
        "value": {"account": "anna.bakes", "caption": "Sunday sourdough, crumb shot #bread #baking",
                  "image": EXAMPLE_IMAGE, "posted_at": "2024-05-12T09:00:00Z", "followers": 5400},
    },
    "sponsored": {
        "summary": "A sponsored draft with disclosure tags",
        "value": {"account": "anna.bakes", "caption": "Loving my new oven from @brand #ad #paid",
                  "sponsored": True},
    },
    "new account": {
        "summary": "An account the model has not seen, with its recent posts",
        "value": {"account": "new.baker", "caption": "First loaf!", "followers": 800, "history": [
            {"caption": "My starter is alive", "posted_at": "2024-05-01T08:00:00Z", "likes": 40,
             "comments": 3},
            {"caption": "Flour haul", "posted_at": "2024-05-05T18:30:00Z", "likes": 25, "comments": 1}]},
    },
}
SCORE_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}, "examples": SCORE_EXAMPLES},
    "multipart/form-data": {"schema": FORM_SCHEMA},
}}}
COMPARE_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/CompareRequest"},
    "examples": {"two captions": {
        "summary": "The same post with a short caption and with "
        "hashtag stuffing, ranked by saves, and the best hour",
        "value": {"account": "anna.bakes", "best_hour": True, "goal": "saves", "drafts": [
            {"caption": "Sunday sourdough #bread"}, {"caption": "Sunday sourdough " + "#bread " * 25}]},
    }},
}}}}
