"""The HTTP API's request and response bodies, with the examples shown on `/docs`.

Requests carry images as base64 text (JSON) or as a file (multipart, see `FORM_SCHEMA`); `engage.serving.parsing`
turns them into the `engage.model.draft.Draft` the model scores, whose limits these schemas repeat so that
`/docs` shows them. Responses mirror `EngageModel.score` and `EngageModel.best_hour`.
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

#: What /v1/compare can rank by: any count target (the model must have it).
Goal = Literal.__getitem__(COUNT_TARGETS)  # type: ignore[attr-defined]

#: Drafts in one /v1/compare request.
MIN_COMPARE, MAX_COMPARE = 2, 10
IMAGE_HELP = "the photo: a JPEG, PNG or WebP file, base64-encoded (a `data:image/...;base64,` URL also works)"

# A 1x1 white JPEG, small enough to show in the examples.
EXAMPLE_IMAGE = (
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/"
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

    caption: str = Field("", max_length=MAX_CAPTION_CHARS, description="at most 2,200 characters, Instagram's limit")
    image: str | None = Field(None, description=IMAGE_HELP)
    posted_at: datetime | None = Field(None, description="when it would be posted (ISO 8601); default: now")
    followers: int | None = Field(None, ge=0, le=10**10, description="the account's follower count")
    sponsored: bool | None = Field(None, description="whether the post is paid for by a brand")
    history: list[HistoryPostIn] | None = Field(
        None, max_length=MAX_HISTORY_POSTS,
        description=f"the account's recent posts (at most {MAX_HISTORY_POSTS}); only needed for an account the "
        "model has not seen, which is otherwise scored with population priors",
    )


class ScoreRequest(DraftIn):
    """One draft to score."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "account": "anna.bakes", "caption": "Sunday sourdough, crumb shot #bread #baking",
            "image": EXAMPLE_IMAGE, "posted_at": "2024-05-12T09:00:00Z", "followers": 5400, "sponsored": False,
        }]},
    )
    account: Account = Field(description="the account (username) that would post it")


class CompareRequest(_Body):
    """Several drafts of one account, to rank."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "account": "anna.bakes", "best_hour": True, "goal": "saves",
            "drafts": [{"caption": "Sunday sourdough #bread"}, {"caption": "Sunday sourdough " + "#bread " * 25}],
        }]},
    )
    account: Account
    drafts: list[DraftIn] = Field(min_length=MIN_COMPARE, max_length=MAX_COMPARE)
    goal: Goal = Field("likes", description="the count to rank the drafts by (and to pick the best hour for): "  # type: ignore[valid-type]
                       + "; ".join(f"{n} ({TARGETS[n].goal})" for n in COUNT_TARGETS))
    best_hour: bool = Field(False, description="also find the best hour in the next 7 days to post the top draft")
    time_zone: TimeZoneName | None = Field(
        None, description="IANA time zone (e.g. Europe/Berlin) whose hours the best hour is given in; default: the "
        "account's zone set on the server (serve.py --account-time-zone), else the server's --time-zone (UTC)")
    # The account's, as in /v1/score: they apply to every draft (and to the best-hour search) unless a draft
    # sends its own.
    followers: int | None = Field(None, ge=0, le=10**10, description="the account's follower count, for every draft")
    history: list[HistoryPostIn] | None = Field(
        None, max_length=MAX_HISTORY_POSTS,
        description=f"the account's recent posts (at most {MAX_HISTORY_POSTS}), for every draft that sends none; "
        "only needed for an account the model has not seen",
    )


class Range(BaseModel):
    expected: float = Field(description="the expected count")
    low: float = Field(description="lower end of the prediction interval")
    high: float = Field(description="upper end of the prediction interval")
    usual: float | None = Field(None, description="the account's usual now: what a post of this account would get at "
                                "this time, from its history, followers and the time (the level)")
    uplift_percent: float | None = Field(None, description="what this draft adds to the usual (its photo, caption, "
                                         "format), in percent: expected = usual x (1 + uplift_percent / 100), in counts + 1")


class Flag(BaseModel):
    code: str = Field(description="stable identifier, e.g. too_many_hashtags")
    message: str = Field(description="the tip, in words")


class Factor(BaseModel):
    feature: str = Field(description="what about the draft, in words, with its value (e.g. 'not sponsored', '3 hashtags')")
    contribution: float = Field(description="its effect on expected log(1 + likes); positive raises likes")
    part: Literal["usual", "draft"] = Field("draft", description="which part it moves: the account's usual (history, "
                                            "followers, time) or this draft's uplift (photo, caption, format)")


class DraftSkill(BaseModel):
    target: str = Field(description="the count target measured (likes)")
    draft_pairs_7d: float | None = Field(description="of held-out pairs of one account's posts at most 7 days apart, "
                                         "scored as two drafts, the share the model ordered right (a coin: 0.5)")
    pairs: int = Field(description="how many such pairs it was measured on")
    trained_on_posts: int = Field(description="posts the model was trained on")
    tells_drafts_apart: bool = Field(description="whether that share is surely above a coin's (90% interval)")
    message: str = Field(description="how far the draft's uplift can be trusted, in plain words")


class FeedPreview(BaseModel):
    source: Literal["model", "history"] = Field(description="where the grid's photos come from: the model's stored feed "
                                                "(GET /v1/feed) or the history sent with the draft")
    consistency: float | None = Field(description="cosine of the draft's photo to the centroid of the feed's photos "
                                      "(image_feed_similarity); null without a photo or a feed")
    usual: float | None = Field(description="the median of that figure over the training posts")
    off_style_below: float | None = Field(description="below this (10th percentile of training posts) the photo is flagged off-style")


class _ScoreBase(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model_version": "engage/3", "embedder": "efficientnet:lite0:imagenet",
        "likes": {"expected": 212.4, "low": 150.0, "high": 301.7, "usual": 189.6, "uplift_percent": 12.0},
        "comments": {"expected": 9.1, "low": 4.0, "high": 17.5},
        "impressions": {"expected": 5120.0, "low": 3300.0, "high": 8400.0},
        "saves": {"expected": 96.0, "low": 51.0, "high": 170.0},
        "authenticity_risk": 0.18,
        "risk_label": "the data set's felt_fake labels: whether the audience found a post inauthentic",
        "flags": [{"code": "too_many_hashtags", "message": "28 hashtags is far more than this account usually uses; ..."}],
        "factors": [{"feature": "number of hashtags", "contribution": -0.21}, {"feature": "your usual likes", "contribution": 0.12}],
        "feed": {"source": "model", "consistency": 0.81, "usual": 0.84, "off_style_below": 0.62},
    }]})
    model_version: str
    embedder: str = Field(description="id of the image embedder the model was trained with")
    score_id: str | None = Field(None, description="this prediction's id in the outcome store: send it with the "
                                 "published post's counts to POST /v1/outcomes (null when the server records none)")


#: One `Range | None` field per count target of the registry, under its name (null where the model has none).
ScoreResponse = create_model(  # type: ignore[call-overload]  # pydantic's overloads cannot type **fields
    "ScoreResponse", __base__=_ScoreBase,
    **{name: (Range | None, Field(None, description=f"expected {TARGETS[name].label} ({TARGETS[name].description}) with the "
                                  "prediction interval; null when the model has no such target")) for name in COUNT_TARGETS},
    authenticity_risk=(float | None, Field(description="probability that the audience finds the post fake, 0..1")),
    risk_label=(str, Field(description="what the risk model learned from: the data set's felt_fake labels, or the "
                           "engagement-drop proxy when the data had none (or why there is no risk model)")),
    flags=(list[Flag], ...),
    factors=(list[Factor], ...),
    draft_skill=(DraftSkill | None, Field(None, description="how far the draft's uplift (uplift_percent) can be "
                                          "trusted: the model's measured skill at ordering two drafts of one account")),
    feed=(FeedPreview | None, Field(None, description="the feed preview: the draft on the profile grid")),
)


class ComparedDraft(BaseModel):
    index: int = Field(description="position of the draft in the request, from 0")
    rank: int = Field(description="1 = most expected of the goal")
    vs_first: float = Field(description="expected goal count minus that of the first draft submitted")
    vs_best: float = Field(description="expected goal count minus that of the top draft (0 for the top one)")
    likes_vs_first: float | None = Field(description="expected likes minus those of the first draft submitted")
    likes_vs_best: float | None = Field(description="expected likes minus those of the most-liked draft")
    score: ScoreResponse  # type: ignore[valid-type]


class BestHour(BaseModel):
    posted_at: datetime = Field(description="the start of the best hour to post, in `time_zone` (with its offset)")
    time_zone: str = Field(description="the IANA time zone the hour is given in (e.g. Europe/Berlin; UTC by default)")
    goal: str = Field(description="the count the hour was chosen for")
    expected: float = Field(description="expected goal count at that hour")
    expected_likes: float | None


class CompareResponse(BaseModel):
    account: str
    goal: str = Field(description="the count the drafts are ranked by")
    drafts: list[ComparedDraft] = Field(description="ranked by the expected goal count, best first")
    risk_label: str = Field(description="what the risk model learned from (the same for every draft)")
    best_hour: BestHour | None = Field(description="for the top draft, when asked for")
    compare_id: str | None = Field(None, description="the comparison's id in the outcome store (each draft's score "
                                   "has its own score_id, for the draft that gets published)")


class FeedPhotos(BaseModel):
    account: str
    photos: list[str] = Field(description="the account's last (up to) eight photos known to the model, newest first, as "
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
    field: str | None = Field(description="the request field at fault (e.g. caption, history[3].likes), if any")
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
        "posted_at": {"type": "string", "format": "date-time", "description": "between 2010-01-01 and 2200-01-01"},
        "followers": {"type": "integer", "minimum": 0, "maximum": 10**10},
        "sponsored": {"type": "boolean"},
        "history": {"type": "string", "description": "JSON array of history posts, as in the JSON body"},
    },
}


#: Hours after publication an outcome may be stated at: up to five years.
MAX_AGE_HOURS = 24 * 366 * 5


class OutcomeIn(_Body):
    """What a published draft did: its post and its counts at a stated age (24 h and 7 days are two records)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "score_id": "3f1c0b6d2a6e4c1f9f0e5b7a8c9d0e1f", "post_id": "C7xYz12AbCd", "posted_at": "2024-05-12T09:03:00Z",
        "age_hours": 24, "likes": 231, "comments": 12}]})
    score_id: str | None = Field(None, min_length=1, max_length=40, description="the score_id of the /v1/score or "
                                 "/v1/compare answer for the draft that was published; may be left out once the post "
                                 "is linked (a later age of the same post)")
    post_id: str | None = Field(None, min_length=1, max_length=200, description="the published post's id (shortcode)")
    permalink: str | None = Field(None, min_length=1, max_length=500, description="the post's Instagram link; "
                                  "stands for post_id when that is left out")
    posted_at: datetime | None = Field(None, description="when the post was published (required the first time)")
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
    baseline_mae: float | None = Field(description="mean absolute error of the account's own trailing average "
                                       "(what it would have said)")
    coverage: float | None = Field(description="share of actual counts inside engage's prediction interval")
    ranked_pairs: int = Field(description="pairs of published drafts of one account with different actual counts")
    ranked_right: float | None = Field(description="share of those pairs where the better one was predicted higher "
                                       "(ranked first)")
    compared_right: float | None = Field(description="of comparisons with two or more published drafts, the share "
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
    points: list[AccuracyPoint] = Field(description="predicted against actual, one per published draft and count")
