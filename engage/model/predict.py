"""Scoring: what a trained bundle says about a draft.

The verbs of the model, in the order a request meets them:

    draft_context   the posts the draft's features are computed against (the account's earlier posts, or the
                    history sent with the draft, and other accounts' posts of the same day), draft last
    features_for    that context through the fitted pipeline: one feature row for the draft
    predict_features  every target's model on a feature table
    score           the API's answer: every count target with a range, risk, flags, factors, the feed preview
    best_hour       the hour of the next days with the highest expected goal count (likes by default)
    predict_frame   batch scoring, one draft per row (the MLflow pyfunc)

Every function takes the loaded `EngageModel` (engage/model/bundle.py, which keeps saving and loading);
serving sees the model only through the `ScoringModel` protocol (engage/model/draft.py, which stays light
to import: no torch, no LightGBM).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engage.data.schema import INSIGHT_COUNTS, validate_posts
from engage.errors import DataError, DraftError, ModelError
from engage.features.decoding import MAX_PIXELS
from engage.features.pipeline import PostVectors
from engage.model.draft import Draft
from engage.model.explain import draft_flags, top_factors
from engage.model.feed import feed_preview
from engage.model.targets import COUNT_TARGETS, TARGETS

if TYPE_CHECKING:
    from engage.model.bundle import EngageModel

#: The post id a draft gets in its context table.
DRAFT_ID = "__draft__"


def draft_context(model: EngageModel, draft: Draft, when: datetime) -> tuple[pd.DataFrame, PostVectors, bool]:
    """The posts (and vectors) a draft's features are computed against, with the draft as the last row;
    and whether the account has any earlier post (known to the model or sent as history)."""
    t = pd.Timestamp(when)
    ctx = model.context_posts
    window = pd.Timedelta(hours=model.settings.features.duplicate_window_hours)
    others = np.flatnonzero(((ctx["account"] != draft.account) & (ctx["posted_at"] >= t - window) & (ctx["posted_at"] <= t)).to_numpy())
    parts_posts = [ctx.iloc[others]]
    parts_vectors = [model.context_vectors.take(others)]
    if draft.history:
        own_posts, own_vectors = history_context(model, draft, t)
    else:
        own = np.flatnonzero(((ctx["account"] == draft.account) & (ctx["posted_at"] < t)).to_numpy())
        own_posts, own_vectors = ctx.iloc[own], model.context_vectors.take(own)
    known = len(own_posts) > 0
    parts_posts.append(own_posts)
    parts_vectors.append(own_vectors)
    row = pd.DataFrame({
        "account": [draft.account], "post_id": [DRAFT_ID], "posted_at": [t], "caption": [draft.caption],
        "likes": [0], "comments": [None], "followers": [draft.followers], "image": [None],
        "is_video": [False], "sponsored": [draft.sponsored],
    })
    parts_posts.append(validate_posts(row, file="<draft>"))
    parts_vectors.append(model.pipeline.embed_draft(draft.image, draft.caption, max_pixels=MAX_PIXELS))
    posts = pd.concat(parts_posts, ignore_index=True)
    return posts, PostVectors.concat(parts_vectors), known


def history_context(model: EngageModel, draft: Draft, t: pd.Timestamp) -> tuple[pd.DataFrame, PostVectors]:
    """The history sent with a draft as context rows: posts before `t`, oldest first, the last N only.

    A history post that cannot be used is named by its position in the request (`history[i]`), not by its
    place after sorting and filtering, so the caller can find it.
    """
    numbered = [(i, h) for i, h in enumerate(draft.history or []) if pd.Timestamp(h.posted_at) < t]
    numbered.sort(key=lambda item: item[1].posted_at)
    numbered = numbered[-model.settings.features.history_posts:]  # only the last N shape the features
    history = [h for _, h in numbered]
    rows = pd.DataFrame({
        "account": [draft.account] * len(history), "post_id": [f"__history_{i}" for i, _ in numbered],
        "posted_at": [pd.Timestamp(h.posted_at) for h in history], "caption": [h.caption for h in history],
        "likes": [h.likes for h in history], "comments": [h.comments for h in history],
        **{count: [getattr(h, count) for h in history] for count in INSIGHT_COUNTS},
        "followers": [draft.followers] * len(history),
    })
    vectors = []
    for i, h in numbered:
        try:
            vectors.append(model.pipeline.embed_draft(h.image, h.caption, max_pixels=MAX_PIXELS))
        except (DraftError, DataError) as e:
            raise DraftError(e.message, field=f"history[{i}].image") from e
    if not vectors:
        return validate_posts(rows, file="<history>"), _empty_vectors(model.context_vectors)
    return validate_posts(rows, file="<history>"), PostVectors.concat(vectors)


def features_for(model: EngageModel, draft: Draft) -> tuple[pd.DataFrame, bool]:
    """The draft's feature row, and whether its account has earlier posts."""
    when = draft.posted_at or datetime.now(UTC)
    posts, vectors, known = draft_context(model, draft, when)
    return model.pipeline.transform(posts, vectors, rows=[len(posts) - 1]), known


def predict_features(model: EngageModel, features: pd.DataFrame) -> dict[str, Any]:
    """Raw predictions for a feature table: log1p expected/low/high per count target, risk probability."""
    return {name: TARGETS[name].predict(target_model, features) for name, target_model in model.models.items()}


def score(model: EngageModel, draft: Draft, *, n_factors: int = 6) -> dict[str, Any]:
    """The API's answer for one draft: every count target with a range (None where the model has none), risk,
    flags, factors and the feed preview."""
    features, known = features_for(model, draft)
    predictions = predict_features(model, features)
    result: dict[str, Any] = {"model_version": model.version, "embedder": model.embedder}
    for name in COUNT_TARGETS:
        result[name] = TARGETS[name].answer(predictions[name]) if name in predictions else None
    risk = TARGETS["authenticity_risk"]
    result["authenticity_risk"] = risk.answer(predictions[risk.name]) if risk.name in predictions else None
    result["risk_label"] = model.risk_label
    result["flags"] = draft_flags(features.iloc[0], model.norms, known_account=known)
    likes_model = model.models.get("likes")
    result["factors"] = top_factors(features, likes_model, n_factors) if likes_model is not None else []
    result["feed"] = feed_preview(draft, features.iloc[0], model.norms)
    return result


def best_hour(model: EngageModel, draft: Draft, *, days: int = 7, start: datetime | None = None,
              goal: str = "likes") -> dict[str, Any]:
    """The hour in the next `days` days with the highest expected `goal` (a count target) for this draft."""
    if goal not in model.models or TARGETS[goal].kind != "count":
        raise ModelError(f"this model has no {goal} target, so it cannot pick a posting hour for it; "
                         f"choose one of {', '.join(n for n in COUNT_TARGETS if n in model.models)}")
    start = (start or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    candidates = [pd.Timestamp(start + timedelta(hours=h)) for h in range(days * 24)]
    posts, vectors, _ = draft_context(model, draft.model_copy(update={"posted_at": start}), start)
    features = model.pipeline.transform_at_times(posts, vectors, len(posts) - 1, candidates)
    expected = model.models[goal].predict_log1p(features)["expected"]
    best = int(np.argmax(expected))
    likes = model.models["likes"].predict_log1p(features.iloc[[best]])["expected"][0] if "likes" in model.models else None
    return {"posted_at": candidates[best].isoformat(), "goal": goal, "expected": round(float(np.expm1(expected[best])), 2),
            "expected_likes": None if likes is None else round(float(np.expm1(likes)), 2)}


def predict_frame(model: EngageModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Batch scoring for the MLflow pyfunc: one draft per row (account, caption, posted_at, ...)."""
    rows = []
    for record in frame.to_dict(orient="records"):
        record = {k: v for k, v in record.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
        if isinstance(record.get("image"), str):
            record["image"] = base64.b64decode(record["image"], validate=True) if record["image"] else None
        rows.append(flat_score(score(model, Draft(**record))))
    return pd.DataFrame(rows)


def flat_score(scored: dict[str, Any], *, max_flags: int | None = None) -> dict[str, Any]:
    """One answer of `score` as a table row: every count target (expected, low, high; NaN where the model has
    none), risk, flag codes."""
    return {
        **{f"{t}_{k}": (scored[t] or {}).get(k, np.nan) for t in COUNT_TARGETS for k in ("expected", "low", "high")},
        "authenticity_risk": scored["authenticity_risk"] if scored["authenticity_risk"] is not None else np.nan,
        "flags": ",".join(f["code"] for f in scored["flags"][:max_flags]),
    }


def _empty_vectors(like: PostVectors) -> PostVectors:
    return PostVectors(
        np.zeros((0, like.image.shape[1]), np.float32),
        np.zeros((0, like.caption.shape[1]), np.float32),
        np.zeros((0, like.quality.shape[1]), np.float32),
    )
