"""What the endpoints ask of the model, run in worker threads: score one draft, rank several, warm up.

The model is anything that satisfies `engage.scoring.contract.ScoringModel` (the loaded model's
`Scorer`, or a stand-in in tests). Errors it raises about a draft (`DraftError`, `DataError` from image decoding) become
`RequestError`s naming the request field (a history photo by its position in the request), prefixed with
the draft's position in a comparison.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from engage.embed.decoding import declared_pixels
from engage.errors import DataError, DraftError, ModelError
from engage.model.draft import Draft
from engage.model.targets import COUNT_TARGETS
from engage.outcomes.store import OutcomeError, OutcomeStore, ScoreRecord
from engage.scoring.contract import ScoringModel
from engage.serving.options import ServeOptions
from engage.serving.parsing import RequestError
from engage.serving.schemas import CompareRequest
from engage.zones import DEFAULT_TIME_ZONE

log = logging.getLogger("engage.serving")

#: Pixels that all the photos of one request may declare together. A 10 MB body holds 75 flat 40-megapixel
#: PNGs (minutes of decoding); this is eight 12-megapixel phone photos, or eighty the size a feed shows.
MAX_REQUEST_PIXELS = 100_000_000


def check_pixel_budget(drafts: list[tuple[str, Draft]]) -> None:
    """400 naming the first photo, in request order, past MAX_REQUEST_PIXELS (headers only, nothing decoded)."""
    total = 0
    for prefix, draft in drafts:
        photos = [(f"{prefix}image", draft.image)] + [
            (f"{prefix}history[{i}].image", post.image) for i, post in enumerate(draft.history or [])]
        for field, image in photos:
            if image is None:
                continue
            total += declared_pixels(image)
            if total > MAX_REQUEST_PIXELS:
                raise RequestError(400, [(field, f"brings the photos of this request to {total:,} pixels, over the "
                                                 f"limit of {MAX_REQUEST_PIXELS:,} for one request; send smaller "
                                                 "photos (a feed shows 1080 px) or fewer history photos")])


def score_draft(model: ScoringModel, draft: Draft, prefix: str = "", history_prefix: str | None = None) -> dict[str, Any]:
    """`scorer.score(draft)`, with the draft's own mistakes turned into RequestErrors naming the field
    (`history_prefix` for its history's fields, when the history was sent elsewhere in the request)."""
    check_pixel_budget([(prefix, draft)])
    try:
        return model.score(draft)
    except DraftError as e:
        where = history_prefix if history_prefix is not None and e.field.startswith("history[") else prefix
        raise RequestError(400, [(where + e.field, e.message)]) from None
    except DataError as e:
        if e.field is None:  # open_image: the draft's photo could not be decoded, or is a bomb
            raise RequestError(400, [(prefix + "image", e.message)]) from None
        # A value the posts table refuses (a validation failure, so 422); its message may quote the value.
        raise RequestError(422, [(prefix + e.field, "has a value the model cannot use")]) from None


def compare_drafts(model: ScoringModel, request: CompareRequest, drafts: list[Draft],
                   time_zone: str = DEFAULT_TIME_ZONE) -> dict[str, Any]:
    """Drafts ranked by the expected `goal` count (ties keep submission order), with the difference each draft
    makes, and the best hour for that goal in `time_zone` (the request's own zone wins)."""
    check_pixel_budget([(f"drafts[{i}].", draft) for i, draft in enumerate(drafts)])
    goal = request.goal
    # A draft without a history of its own uses the account's, sent once at the top level and named so.
    shared = ["" if request.history is not None and own.history is None else None for own in request.drafts]
    scores = [score_draft(model, draft, prefix=f"drafts[{i}].", history_prefix=shared[i]) for i, draft in enumerate(drafts)]
    if any(score.get(goal) is None for score in scores):
        known = ", ".join(name for name in COUNT_TARGETS if scores[0].get(name) is not None) or "none"
        raise RequestError(409, [("goal", f"this model predicts no {goal} (its training data had none), so it cannot "
                                          f"rank drafts by it; goals this model has: {known}")])
    expected = [float(score[goal]["expected"]) for score in scores]
    likes = [float(score["likes"]["expected"]) if score.get("likes") else None for score in scores]
    order = sorted(range(len(scores)), key=lambda i: (-expected[i], i))
    top = expected[order[0]]
    most_likes = max((v for v in likes if v is not None), default=None)
    ranked = [
        {"index": i, "rank": rank, "vs_first": round(expected[i] - expected[0], 2), "vs_best": round(expected[i] - top, 2),
         "likes_vs_first": None if likes[i] is None else round(likes[i] - likes[0], 2),  # type: ignore[operator]
         "likes_vs_best": None if likes[i] is None else round(likes[i] - most_likes, 2),  # type: ignore[operator]
         "score": scores[i]}
        for rank, i in enumerate(order, start=1)
    ]
    best_hour = None
    if request.best_hour:
        try:
            best_hour = model.best_hour(drafts[order[0]], days=7, goal=goal,
                                        time_zone=request.time_zone or time_zone)
        except ModelError as e:
            raise RequestError(409, [("best_hour", str(e))]) from None
    return {"account": request.account, "goal": goal, "drafts": ranked, "risk_label": scores[0]["risk_label"],
            "best_hour": best_hour}


def recorded(store: OutcomeStore | None, drafts: list[Draft], answers: list[dict[str, Any]],
             compare: dict[str, Any] | None = None) -> None:
    """Record scored drafts in the outcome store (one transaction) and give each answer its `score_id`; the
    feature row the model attached (`_features`) goes to the store, never to the client."""
    records = []
    for index, (draft, answer) in enumerate(zip(drafts, answers, strict=True)):
        extra = {} if compare is None else {"compare_id": compare["compare_id"], "draft_index": index,
                                            "rank": compare["ranks"][index], "goal": compare["goal"]}
        if store is not None:
            records.append(ScoreRecord.of(draft, answer, **extra))
        answer.pop("_features", None)
    if store is None:
        for answer in answers:
            answer["score_id"] = None
        return
    try:
        ids = store.record_scores(records)
    except OutcomeError as e:
        raise RequestError(e.status, [(e.field, e.message)], headers={"Retry-After": "1"}) from None
    for answer, score_id in zip(answers, ids, strict=True):
        answer["score_id"] = score_id


def score_and_record(model: ScoringModel, draft: Draft, store: OutcomeStore | None) -> dict[str, Any]:
    """`score_draft`, recorded in the outcome store: the answer carries its `score_id`."""
    answer = dict(score_draft(model, draft))
    recorded(store, [draft], [answer])
    return answer


def compare_and_record(model: ScoringModel, request: CompareRequest, drafts: list[Draft], store: OutcomeStore | None,
                       time_zone: str = DEFAULT_TIME_ZONE) -> dict[str, Any]:
    """`compare_drafts`, every draft's score recorded with its rank (the comparison's `compare_id` ties them)."""
    result = compare_drafts(model, request, drafts, time_zone)
    ranked = sorted(result["drafts"], key=lambda d: d["index"])
    answers = [dict(d["score"]) for d in ranked]
    compare_id = uuid.uuid4().hex if store is not None else None
    recorded(store, drafts, answers, {"compare_id": compare_id, "goal": request.goal,
                                      "ranks": [d["rank"] for d in ranked]})
    for entry, answer in zip(ranked, answers, strict=True):
        entry["score"] = answer
    result["compare_id"] = compare_id
    return result


def warm_up_draft(model: ScoringModel) -> Draft:
    """A draft that runs every stage once (photo decode and embedding, caption embedding, all targets)."""
    accounts = model.context_posts["account"] if len(model.context_posts) else None
    account = str(accounts.iloc[-1]) if accounts is not None else "warm.up"
    ramp = np.linspace(0, 255, 256, dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], np.uint8(128)), axis=-1)
    jpeg = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(jpeg, format="JPEG", quality=90)
    return Draft(account=account, caption="Warming up the model #engage", image=jpeg.getvalue())


def load_model(uri: str, tracking_uri: str | None, options: ServeOptions | None = None,
               expected_callers: Callable[[], int] | None = None) -> ScoringModel:
    """A `Scorer` of the EngageModel at `uri`, its embedders checked against training, set up with the options'
    batching and vector cache, and warmed with one prediction (which also prepares its stored context)."""
    # Heavy imports, and only needed when serving a real model.
    from engage.model.bundle import EngageModel
    from engage.scoring.scorer import Scorer

    options = options or ServeOptions()
    model = EngageModel.from_uri(uri, tracking_uri)
    model.check_embedder()
    scorer = Scorer.for_serving(model, batch_size=options.batch_size, batch_wait_ms=options.batch_wait_ms,
                                vector_cache_items=options.vector_cache_items, expected_callers=expected_callers)
    scorer.score(warm_up_draft(scorer))
    return scorer


def open_store(options: ServeOptions) -> OutcomeStore | None:
    """The outcome store of `options` (migrated to the newest schema), or None when it records nothing."""
    if not options.outcomes:
        return None
    try:
        store = OutcomeStore(options.outcomes, keep_photos=options.outcomes_photos)
    except Exception as e:  # a bad URL, a server that does not answer, a file that is not a database
        raise OutcomeError(500, "outcomes", f"the outcome store {options.outcomes.split('@')[-1]} cannot be opened "
                                            f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}); fix --outcomes or "
                                            "pass --outcomes off") from e
    log.info("recording scores and outcomes in %r", store)
    return store


def require_store(store: OutcomeStore | None) -> OutcomeStore:
    """The store, or 404 on a server that records no outcomes."""
    if store is None:
        raise RequestError(404, [(None, "this server records no outcomes (started with --outcomes off)")])
    return store
