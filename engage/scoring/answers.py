"""What the `Scorer` answers, typed: a draft's `Answer`, a `Comparison` of drafts, the `BestHour` to post.

These pydantic models are the scorer's return types and, unchanged, the HTTP API's response bodies
(engage/serving/schemas.py re-exports them under the API's names: `ScoreResponse` is `Answer`), so a field
added here is typed from the model's numbers to the JSON a client reads, and shown on `/docs`.

    answer = scorer.score(draft)                                            # an `Answer`
    answer.likes.expected, answer.likes.usual, answer.likes.uplift_percent   # a count target (None if absent)
    answer.count("saves")                                                   # the same, by name
    answer.flat()                                                           # one row of a scores table
    answer.features
    # its feature row (never serialised)

`rank` orders answers by a goal count: `Scorer.compare` and the HTTP API's `/v1/compare` both rank with it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model

from engage.errors import ModelError
from engage.model.targets import COUNT_TARGETS, TARGETS


class Range(BaseModel):
    expected: float = Field(description="the expected count")
    low: float = Field(description="lower end of the prediction interval")
    high: float = Field(description="upper end of the prediction interval")
    usual: float | None = Field(None,
                                description="the account's usual now: what a post of this account would get "
                                "at this time, from its history, followers and the time (the level)")
    uplift_percent: float | None = Field(None,
                                         description="what this draft adds to the usual (its photo, caption, "
        "format), in percent: expected = usual x (1 + uplift_percent / 100), "
                                         "in counts + 1")


class Flag(BaseModel):
    code: str = Field(description="stable identifier, e.g. too_many_hashtags")
    message: str = Field(description="the tip, in words")


class Factor(BaseModel):
    feature: str = Field(description="what about the draft, in words, with its value (e.g. 'not sponsored', "
                         "'3 hashtags')")
    contribution: float = Field(description="its effect on expected log(1 + likes); positive raises likes")
    part: Literal["usual", "draft"] = Field("draft", description="which part it moves: the account's usual "
        "(history, followers, time) or this draft's uplift (photo, caption, "
                                            "format)")


class DraftSkill(BaseModel):
    target: str = Field(description="the count target measured (likes)")
    draft_pairs_7d: float | None = Field(
        description="of held-out pairs of one account's posts at most 7 days "
                                         "apart, scored as two drafts, the share the model ordered right (a "
                                         "coin: 0.5)")
    pairs: int = Field(description="how many such pairs it was measured on")
    trained_on_posts: int = Field(description="posts the model was trained on")
    tells_drafts_apart: bool = Field(description="whether that share is surely above a coin's (90% interval)")
    message: str = Field(description="how far the draft's uplift can be trusted, in plain words")


class FeedPreview(BaseModel):
    source: Literal["model", "history"] = Field(description="where the grid's photos come from: the model's "
        "stored feed (GET /v1/feed) or the history sent with the draft")
    consistency: float | None = Field(description="cosine of the draft's photo to the centroid of the feed's "
                                      "photos (image_feed_similarity); null without a photo or a feed")
    usual: float | None = Field(description="the median of that figure over the training posts")
    off_style_below: float | None = Field(
        description="below this (10th percentile of training posts) the photo "
                                          "is flagged off-style")


class Answer(BaseModel):
    """A draft's answer; what every answer has. Its per-target fields (`likes`, `comments`...: `Range | None`)
    are added from the target registry by `ScoreAnswer`, the
    class the scorer returns; `count(name)` reads one."""


    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model_version": "engage/3", "embedder": "efficientnet:lite0:imagenet",
        "likes": {"expected": 212.4, "low": 150.0, "high": 301.7, "usual": 189.6, "uplift_percent": 12.0},
        "comments": {"expected": 9.1, "low": 4.0, "high": 17.5},
        "impressions": {"expected": 5120.0, "low": 3300.0, "high": 8400.0},
        "saves": {"expected": 96.0, "low": 51.0, "high": 170.0},
        "authenticity_risk": 0.18,
        "risk_label": "the data set's felt_fake labels: whether the audience found a post inauthentic",
        "flags": [{"code": "too_many_hashtags",
                   "message": "28 hashtags is far more than this account usually uses; ..."}],
        "factors": [{"feature": "number of hashtags", "contribution": -0.21},
                    {"feature": "your usual likes", "contribution": 0.12}],
        "feed": {"source": "model", "consistency": 0.81, "usual": 0.84, "off_style_below": 0.62},
    }]})
    model_version: str
    embedder: str = Field(description="id of the image embedder the model was trained with")
    score_id: str | None = Field(None,
                                 description="this prediction's id in the outcome store: send it with the "
                                 "published post's counts to POST /v1/outcomes (null when the server records "
                                 "none)")
    authenticity_risk: float | None = Field(
        description="probability that the audience finds the post fake, 0..1")
    risk_label: str = Field(
        description="what the risk model learned from: the data set's felt_fake labels, or the "
                            "engagement-drop proxy when the data had none (or why there is no risk model)")
    flags: list[Flag]
    factors: list[Factor]
    draft_skill: DraftSkill | None = Field(None,
                                           description="how far the draft's uplift (uplift_percent) can be "
        "trusted: the model's measured skill at ordering two drafts of one account")
    feed: FeedPreview | None = Field(None, description="the feed preview: the draft on the profile grid")
    #: The draft's feature row (NaN as None): the outcome store records it; it is never part of the JSON.
    _features: dict[str, float | None] = PrivateAttr(default_factory=dict)

    @property
    def features(self) -> dict[str, float | None]:
        return self._features

    def with_features(self, features: dict[str, float | None]) -> Answer:
        self._features = features
        return self

    def count(self, name: str) -> Range | None:
        """The answer's range for the count target `name` (None where the model has no such target)."""
        if name not in COUNT_TARGETS:
            raise KeyError(
                f"{name!r} is not a count target; the count targets are {', '.join(COUNT_TARGETS)}")
        value: Range | None = getattr(self, name)
        return value

    def flat(self, *, max_flags: int | None = None) -> dict[str, float | str]:
        """The answer as a table row: every count target (expected, low, high; NaN where the model has none),
        risk (NaN where none), the flag codes (the first `max_flags`) joined by commas."""
        row: dict[str, float | str] = {}
        for name in COUNT_TARGETS:
            value = self.count(name)
            for key in ("expected", "low", "high"):
                row[f"{name}_{key}"] = math.nan if value is None else getattr(value, key)
        row["authenticity_risk"] = math.nan if self.authenticity_risk is None else self.authenticity_risk
        row["flags"] = ",".join(f.code for f in self.flags[:max_flags])
        return row


#: The class of a draft's answer: `Answer` with one `Range | None` field per count target of the registry,
#: under its name (null where the model has none). The API calls it ScoreResponse.
ScoreAnswer: type[Answer] = create_model(  # type: ignore[call-overload]  # pydantic cannot type **fields
    "ScoreResponse", __base__=Answer,
    **{name: (Range | None,
              Field(None, description=f"expected {TARGETS[name].label} ({TARGETS[name].description}) "
                                  "with the prediction interval; null when the model has no such target"))
       for name in COUNT_TARGETS},
)


class ComparedDraft(BaseModel):
    index: int = Field(description="position of the draft in the request, from 0")
    rank: int = Field(description="1 = most expected of the goal")
    vs_first: float = Field(description="expected goal count minus that of the first draft submitted")
    vs_best: float = Field(description="expected goal count minus that of the top draft (0 for the top one)")
    likes_vs_first: float | None = Field(
        description="expected likes minus those of the first draft submitted")
    likes_vs_best: float | None = Field(description="expected likes minus those of the most-liked draft")
    score: ScoreAnswer  # type: ignore[valid-type]


class BestHour(BaseModel):
    posted_at: datetime = Field(
        description="the start of the best hour to post, in `time_zone` (with its offset)")
    time_zone: str = Field(description="the IANA time zone the hour is given in (e.g. Europe/Berlin; UTC by "
                           "default)")
    goal: str = Field(description="the count the hour was chosen for")
    expected: float = Field(description="expected goal count at that hour")
    expected_likes: float | None


class Comparison(BaseModel):
    account: str
    goal: str = Field(description="the count the drafts are ranked by")
    drafts: list[ComparedDraft] = Field(description="ranked by the expected goal count, best first")
    risk_label: str = Field(description="what the risk model learned from (the same for every draft)")
    best_hour: BestHour | None = Field(description="for the top draft, when asked for")
    compare_id: str | None = Field(None,
                                   description="the comparison's id in the outcome store (each draft's score "
                                   "has its own score_id, for the draft that gets published)")


def missing_goal(goal: str, have: list[str]) -> str:
    """Why drafts cannot be ranked by a count the model does not predict, and the goals it has."""
    return (
        f"this model predicts no {goal} (its training data had none), so it cannot rank drafts by it; goals "
            f"this model has: {', '.join(have) or 'none'}")


def rank(answers: list[Answer], goal: str) -> list[ComparedDraft]:
    """The answers ranked by their expected `goal` count, best first (ties keep submission order), each with
    the difference it makes against the first draft submitted and against the top one (likes too).

    Raises ModelError (naming the goals the answers have) when an answer has no `goal`."""
    if not answers:
        return []
    ranges = [a.count(goal) for a in answers]
    if any(r is None for r in ranges):
        raise ModelError(missing_goal(goal, [n for n in COUNT_TARGETS if answers[0].count(n) is not None]))
    expected = [float(r.expected) for r in ranges if r is not None]
    likes = [None if (r := a.count("likes")) is None else float(r.expected) for a in answers]
    order = sorted(range(len(answers)), key=lambda i: (-expected[i], i))
    top = expected[order[0]]
    most_likes = max((v for v in likes if v is not None), default=None)

    def minus(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 2)

    return [ComparedDraft(index=i, rank=position, vs_first=round(expected[i] - expected[0], 2),
                          vs_best=round(expected[i] - top, 2), likes_vs_first=minus(likes[i], likes[0]),
                          likes_vs_best=minus(likes[i], most_likes), score=answers[i])
            for position, i in enumerate(order, start=1)]
