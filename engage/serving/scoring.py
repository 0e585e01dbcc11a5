"""What the endpoints ask of the model, run in worker threads: score one draft, rank several, warm up.

The model is anything that satisfies `engage.scoring.contract.ScoringModel` (the loaded model's
`Scorer`, or a stand-in in tests). Errors it raises about a draft (`DraftError`, `DataError` from image
decoding) become `RequestError`s naming the request field (a history photo by its position in the request),
prefixed with the draft's position in a comparison.
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
from engage.outcomes.store import OutcomeError, OutcomeStore, ScoreRecord
from engage.scoring.answers import Answer, Comparison
from engage.scoring.compare import DraftOfManyError, compare
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
    """400 naming the first photo, in request order, past
    MAX_REQUEST_PIXELS (headers only, nothing decoded)."""
    total = 0
    for prefix, draft in drafts:
        photos = [(f"{prefix}image", draft.image)] + [
            (f"{prefix}history[{i}].image", post.image) for i, post in enumerate(draft.history or [])]
        for field, image in photos:
            if image is None:
                continue
            total += declared_pixels(image)
            if total > MAX_REQUEST_PIXELS:
                raise RequestError(400, [(field,
                                          f"brings the photos of this request to {total:,} pixels, over the "
                                          f"limit of {MAX_REQUEST_PIXELS:,} for one request; send smaller "
                                                 "photos (a feed shows 1080 px) or fewer history photos")])


def _request_error(e: DraftError | DataError, prefix: str, history_prefix: str | None = None) -> RequestError:
    """A draft's own mistake as the RequestError naming the request field (`history_prefix` for its history's
    fields, when the history was sent elsewhere in the request)."""
    if isinstance(e, DraftError):
        where = history_prefix if history_prefix is not None and e.field.startswith("history[") else prefix
        return RequestError(400, [(where + e.field, e.message)])
    if e.field is None:  # open_image: the draft's photo could not be decoded, or is a bomb
        return RequestError(400, [(prefix + "image", e.message)])
    # A value the posts table refuses (a validation failure, so 422); its message may quote the value.
    return RequestError(422, [(prefix + e.field, "has a value the model cannot use")])


def score_draft(model: ScoringModel, draft: Draft) -> Answer:
    """`scorer.score(draft)`, with the draft's own mistakes turned into RequestErrors naming the field."""
    check_pixel_budget([("", draft)])
    try:
        return model.score(draft)
    except (DraftError, DataError) as e:
        raise _request_error(e, "") from None


def compare_drafts(model: ScoringModel, request: CompareRequest, drafts: list[Draft],
                   time_zone: str = DEFAULT_TIME_ZONE) -> Comparison:
    """`engage.scoring.compare.compare` (the Scorer's own ranking) for a /v1/compare request, in `time_zone`
    unless the request names its own; a draft's mistakes name its field (`drafts[i].caption`, or
    `history[j].image` for the history sent once for every draft), a goal the model lacks is a 409."""
    check_pixel_budget([(f"drafts[{i}].", draft) for i, draft in enumerate(drafts)])
    try:
        return compare(model, drafts, goal=request.goal, best_hour=request.best_hour,
                       time_zone=request.time_zone or time_zone)
    except DraftOfManyError as e:
        # A draft without a history of its own uses the account's, sent once at the top level and named so.
        shared = "" if request.history is not None and request.drafts[e.index].history is None else None
        raise _request_error(e.error, f"drafts[{e.index}].", shared) from None
    except ModelError as e:
        raise RequestError(409, [("goal", str(e))]) from None


def recorded(store: OutcomeStore | None, drafts: list[Draft], answers: list[Answer],
             compare: dict[str, Any] | None = None) -> None:
    """Record scored drafts in the outcome store (one transaction) and give each answer its `score_id`; the
    feature row the model attached (`Answer.features`) goes to the store, never to the client."""
    records = []
    for index, (draft, answer) in enumerate(zip(drafts, answers, strict=True)):
        extra = {} if compare is None else {"compare_id": compare["compare_id"], "draft_index": index,
                                            "rank": compare["ranks"][index], "goal": compare["goal"]}
        if store is not None:
            records.append(ScoreRecord.of(draft, answer, **extra))
    if store is None:
        for answer in answers:
            answer.score_id = None
        return
    try:
        ids = store.record_scores(records)
    except OutcomeError as e:
        raise RequestError(e.status, [(e.field, e.message)], headers={"Retry-After": "1"}) from None
    for answer, score_id in zip(answers, ids, strict=True):
        answer.score_id = score_id


def score_and_record(model: ScoringModel, draft: Draft, store: OutcomeStore | None) -> Answer:
    """`score_draft`, recorded in the outcome store: the answer carries its `score_id`."""
    answer = score_draft(model, draft)
    recorded(store, [draft], [answer])
    return answer


def compare_and_record(model: ScoringModel, request: CompareRequest, drafts: list[Draft],
                       store: OutcomeStore | None,
                       time_zone: str = DEFAULT_TIME_ZONE) -> Comparison:
    """`compare_drafts`, every draft's score recorded with
    its rank (the comparison's `compare_id` ties them)."""
    result = compare_drafts(model, request, drafts, time_zone)
    ranked = sorted(result.drafts, key=lambda d: d.index)
    compare_id = uuid.uuid4().hex if store is not None else None
    recorded(store, drafts, [d.score for d in ranked], {"compare_id": compare_id, "goal": request.goal,
                                                        "ranks": [d.rank for d in ranked]})
    result.compare_id = compare_id
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
    """A `Scorer` of the EngageModel at `uri`, its embedders checked against training, set up with the
    options' batching and vector cache, and warmed with one prediction (which also prepares its stored
    context)."""
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
        raise OutcomeError(500, "outcomes",
                           f"the outcome store {options.outcomes.split('@')[-1]} cannot be opened "
            f"({type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}); fix --outcomes or "
                                            "pass --outcomes off") from e
    log.info("recording scores and outcomes in %r", store)
    return store


def require_store(store: OutcomeStore | None) -> OutcomeStore:
    """The store, or 404 on a server that records no outcomes."""
    if store is None:
        raise RequestError(404, [(None, "this server records no outcomes (started with --outcomes off)")])
    return store
