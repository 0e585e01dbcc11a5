"""Scoring: the `Scorer` serves one trained `EngageModel` and is the one way a draft gets an answer.

    scorer = Scorer(EngageModel.from_uri("models:/engage@champion"))      # plain: no cache, no batcher
    scorer = Scorer.for_serving(model, batch_size=8, vector_cache_items=8192)   # what serve.py runs
    scorer.score(draft)              # an Answer: every count target with a range, risk, flags, factors, feed
    scorer.compare(drafts, goal="saves", best_hour=True)   # a Comparison: drafts ranked by a goal count
    scorer.best_hour(draft)          # a BestHour: the hour of the next days with the highest expected goal
    count scorer.score_many(drafts)        # a table's drafts, 32 at a time, each failing draft its own error

The answers are typed (pydantic models of engage/scoring/answers.py, which the HTTP API serves as they are).

The HTTP API (engage/serving/), batch scoring (engage/batch.py), the MLflow pyfunc (engage/scoring/pyfunc.py)
and the Ray model actors (engage/distributed/scoring.py) all call it. The model is what was trained and
saved (engage/model/bundle.py); the scorer owns what serving it needs and derives from the model: the stored
context prepared once (`PreparedContext`), the drafts' vectors with their in-memory cache (`DraftVectors`,
engage/scoring/draft_vectors.py) and, when serving, the dynamic batcher (engage/scoring/batching.py).

The verbs, in the order a request meets them:

    prepare         in the request's thread: the draft's context rows (the account's earlier posts, or the
                    history sent with it) and its photos decoded, measured and preprocessed
    score_batch     one or many prepared drafts: their new photos and captions in one forward pass per model,
                    their features in one table (`batch_features`),
                    each target's model called once, the answers
    score           prepare, then score_batch alone or in the serving batcher's batch

What a batch shares is the per-call cost of the embedders, pandas and LightGBM (about 17 ms per batch against
4 ms per draft). A draft's answer is the same alone or in a batch, and the same as computing it against the
whole stored context (tests compare them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from engage.data.schema import INSIGHT_COUNTS, typed_posts
from engage.errors import DraftError, EngageError, ModelError
from engage.features.vectors import PostVectors
from engage.model.bundle import EngageModel
from engage.model.draft import Draft
from engage.model.explain import draft_flags, draft_skill, top_factors
from engage.model.feed import feed_preview
from engage.model.known import early_context, knowledge_flags, rebase, within_own_range
from engage.model.targets import COUNT_TARGETS, TARGETS
from engage.scoring.answers import Answer, BestHour, Comparison, ScoreAnswer
from engage.scoring.batching import DynamicBatcher
from engage.scoring.compare import compare
from engage.scoring.context import PreparedContext
from engage.scoring.draft_vectors import DraftVectors, PendingVectors, PostImageError
from engage.zones import DEFAULT_TIME_ZONE, time_zone_info

#: The post id a draft gets in its context table.
DRAFT_ID = "__draft__"
#: Drafts of a table scored together (one forward pass per embedder, one feature table, one call per model);
#: a chunk at a time, since prepared photos are 0.6 MB each.
SCORE_CHUNK = 32


@dataclass
class DraftInputs:
    """A draft made ready for scoring in its request's thread: its account's stored earlier posts, its own
    rows (the history sent with it, then the draft) and their photos decoded and measured, waiting for the
    embedders (`score_batch` runs them once for many drafts)."""

    draft: Draft
    when: pd.Timestamp
    stored: pd.DataFrame  # the account's stored posts before the draft, oldest first (none with a history)
    rows: pd.DataFrame  # the history sent with the draft, then the draft, as canonical rows
    vectors: PendingVectors  # their photos and captions, for DraftVectors.finish
    n_factors: int = 6  # how many factors its answer names
    #: (the account's first stored post, how many of them stand in) for a draft dated before all of them
    early: tuple[pd.Timestamp, int] | None = None


class Scorer:
    """Scores drafts with one trained `EngageModel`; satisfies `engage.scoring.contract.ScoringModel`."""

    def __init__(self, model: EngageModel, *, vector_cache_items: int = 0, batch_size: int = 1,
                 batch_wait_ms: float = 0.0, expected_callers: Callable[[], int] | None = None):
        """`vector_cache_items`: an in-memory LRU of photo and caption vectors (0: none). `batch_size` > 1: a
        dynamic batcher, so that drafts scored at the same time share the embedders' forward passes, the
        feature table and the models' calls (`expected_callers`: how many callers may still submit)."""
        self.model = model
        self.vectors = DraftVectors(model.pipeline, cache_items=vector_cache_items)
        self._prepared: PreparedContext | None = None
        self._preparing = threading.Lock()
        self.batcher: DynamicBatcher[DraftInputs, Answer | BaseException] | None = None
        if batch_size > 1:
            self.batcher = DynamicBatcher(self.score_isolated, max_batch_size=batch_size,
                                          max_wait_ms=batch_wait_ms,
                                          expected_callers=expected_callers, name="score-batcher")

    @classmethod
    def for_serving(cls, model: EngageModel, *, batch_size: int = 1, batch_wait_ms: float = 0.0,
                    vector_cache_items: int = 0, expected_callers: Callable[[], int] | None = None) -> Scorer:
        """A scorer as a server runs it: with the given vector
        cache and batcher, and NumPy's BLAS in one thread.

        A draft's matrix products are tiny, and OpenBLAS's idle worker threads busy-wait for a while after
        each one: with two BLAS threads a server burned a second core for every draft it scored, 207 ms of CPU
        per draft against 117 ms with one (docs/performance.md). Process-wide, as BLAS's own setting is."""
        scorer = cls(model, vector_cache_items=vector_cache_items, batch_size=batch_size,
                     batch_wait_ms=batch_wait_ms,
                     expected_callers=expected_callers)
        threadpool_limits(limits=1, user_api="blas")
        return scorer

    # -- what serving shows of the model ---------------------------------------------------------
    @property
    def version(self) -> str:
        return self.model.version

    @property
    def embedder(self) -> str:
        return self.model.embedder

    @property
    def risk_label(self) -> str:
        return self.model.risk_label

    @property
    def context_posts(self) -> pd.DataFrame:
        return self.model.context_posts

    @property
    def info(self) -> dict[str, Any]:
        return self.model.info

    @property
    def models(self) -> dict[str, Any]:
        return self.model.models

    @property
    def feed_photos(self) -> dict[str, list[str]]:
        return self.model.feed_photos

    def check_embedder(self) -> None:
        """Build the embedders now; raises EmbedderMismatchError if they differ from training."""
        self.model.check_embedder()

    def serving_settings(self) -> dict[str, Any]:
        """The batching settings (and batches run) and the vector cache's use, as /ready reports them."""
        batching = (self.batcher.settings() | self.batcher.stats.as_dict() if self.batcher is not None
                    else {"max_batch_size": 1})
        return {"batching": batching, "vector_cache": self.vectors.cache.info()}

    # -- the stored context, prepared once -------------------------------------------------------
    @property
    def prepared(self) -> PreparedContext:
        """The model's `PreparedContext`, built on first use (serving warms the scorer, so: at load)."""
        if self._prepared is None:
            with self._preparing:
                if self._prepared is None:
                    self._prepared = PreparedContext(self.model)
        return self._prepared

    # -- one draft's way through -----------------------------------------------------------------
    def prepare(self, draft: Draft, when: datetime | None = None) -> DraftInputs:
        """Everything about one draft that no batch can share: its context rows, and its photos decoded,
        measured and preprocessed. A photo that cannot be used is a `DraftError` naming it (`image`,
        `history[i].image`). `when`: the time it is scored for (default: its `posted_at`, else now)."""
        model = self.model
        t = pd.Timestamp(when or draft.posted_at or datetime.now(UTC))
        early = None
        if draft.history:
            numbered = [(i, h) for i, h in enumerate(draft.history) if pd.Timestamp(h.posted_at) < t]
            numbered.sort(key=lambda item: item[1].posted_at)
            numbered = numbered[-model.settings.features.history_posts:]  # only the last N shape the features
            stored = model.context_posts.iloc[:0]
        else:
            numbered = []
            stored = model.context_posts.iloc[self.prepared.earlier_posts(draft.account, t)]
            first = self.prepared.first_posts(draft.account, model.settings.features.history_posts)
            if not len(stored) and len(first):  # dated before every stored post of a known account
                stored = early_context(model.context_posts.iloc[first], t)
                early = (model.context_posts["posted_at"].iloc[first[0]], len(first))
        history = [h for _, h in numbered]
        # the history sent with the draft, then the draft, as the table's rows (pydantic has checked them)
        rows = {
            "account": [draft.account] * (len(history) + 1),
            "post_id": [f"__history_{i}" for i, _ in numbered] + [DRAFT_ID],
            "posted_at": [h.posted_at for h in history] + [t],
            "caption": [h.caption for h in history] + [draft.caption],
            "likes": [h.likes for h in history] + [0], "comments": [h.comments for h in history] + [None],
            **{count: [getattr(h, count) for h in history] + [None] for count in INSIGHT_COUNTS},
            "followers": [draft.followers] * (len(history) + 1),
            "sponsored": [None] * len(history) + [draft.sponsored],
        }
        try:
            pending = self.vectors.prepare([(h.image,
                                             h.caption) for h in history] + [(draft.image, draft.caption)])
        except PostImageError as e:
            # A history post is named by its position in the request, not by its place after sorting.
            field = f"history[{numbered[e.index][0]}].image" if e.index < len(history) else "image"
            raise DraftError(e.message, field=field) from e
        return DraftInputs(draft, t, stored, typed_posts(rows), pending, early=early)

    def draft_contexts(self, inputs: list[DraftInputs]) -> list[tuple[pd.DataFrame, PostVectors]]:
        """Each draft's context table (its account's posts, the draft last) and vectors, the new photos and
        captions of all of them embedded in one forward pass per model.

        Other accounts' posts are not in it: they only matter for duplicates, which `draft_duplicates` counts
        from the prepared index.
        """
        new = self.vectors.finish([i.vectors for i in inputs])
        out = []
        for draft, vectors in zip(inputs, new, strict=True):
            own = self.model.context_vectors.take(draft.stored.index.to_numpy()) if len(
                draft.stored) else None
            posts = pd.concat([draft.stored, draft.rows],
                              ignore_index=True) if own is not None else draft.rows
            out.append((posts, PostVectors.concat([own, vectors]) if own is not None else vectors))
        return out

    def draft_context(self, draft: Draft, when: datetime) -> tuple[pd.DataFrame, PostVectors, bool]:
        """The account's posts the draft's features are computed against (its stored earlier posts, or the
        history sent with it), with the draft as the last
        row; and whether the account has any earlier post."""
        ((posts, vectors),) = self.draft_contexts([self.prepare(draft, when)])
        return posts, vectors, len(posts) > 1

    def draft_duplicates(self, draft: Draft, vectors: PostVectors, times: list[pd.Timestamp]) -> pd.DataFrame:
        """The duplicate features of the draft (the last row of `vectors`) as if posted at each of `times`."""
        return self.prepared.duplicates.draft(draft.account, times, vectors.image[-1], vectors.caption[-1],
                                              draft.caption)

    def batch_features(self, inputs: list[DraftInputs]) -> tuple[pd.DataFrame, list[bool]]:
        """One feature row per draft (in order) in one pass of the pipeline, and whether each account has
        earlier posts.

        The drafts' contexts go into one table, each under its own account key, so that no draft is another's
        history (two drafts of one account scored together stay apart); a row's features never depend on the
        other rows of the table (engage/features/history.py), so a draft scores as it would alone.
        """
        contexts = self.draft_contexts(inputs)
        tables, known, rows, offset = [], [], [], 0
        for k, (draft, (posts, _)) in enumerate(zip(inputs, contexts, strict=True)):
            if len(inputs) > 1:
                posts = posts.assign(account=f"{draft.draft.account}\x1f{k}")
            tables.append(posts)
            known.append(len(posts) > 1)
            offset += len(posts)
            rows.append(offset - 1)
        posts = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
        vectors = PostVectors.concat([v for _, v in contexts]) if len(contexts) > 1 else contexts[0][1]
        duplicates = [self.draft_duplicates(i.draft, v, [i.when]) for i,
                      (_, v) in zip(inputs, contexts, strict=True)]
        duplicates = pd.concat(duplicates, ignore_index=True) if len(duplicates) > 1 else duplicates[0]
        features = self.model.pipeline.transform(posts, vectors, rows=rows, duplicates=duplicates)
        return features.reset_index(drop=True), known

    def features_for(self, draft: Draft) -> tuple[pd.DataFrame, bool]:
        """The draft's feature row, and whether its account has earlier posts."""
        features, known = self.batch_features([self.prepare(draft)])
        return features, known[0]

    def predict_features(self, features: pd.DataFrame) -> dict[str, Any]:
        """Raw predictions for a feature table: log1p expected/low/high per count target, risk probability."""
        return {name: TARGETS[name].predict(target_model, features) for name,
                target_model in self.model.models.items()}

    def score_batch(self, inputs: list[DraftInputs]) -> list[Answer]:
        """The answers for prepared drafts, in order: their vectors in one forward pass per model, their
        features in one table and each target's model called once for all. What the batcher runs."""
        model = self.model
        features, known = self.batch_features(inputs)
        predictions = self.predict_features(features)
        likes_model = model.models.get("likes")
        risk = TARGETS["authenticity_risk"]
        # How far the draft's uplift can be trusted: the model's own held-out draft-pair accuracy, in words.
        skill = draft_skill(model.info.get("metrics") or {}) if likes_model is not None else None
        answers = []
        for row, (draft, n_factors) in enumerate((i.draft, i.n_factors) for i in inputs):
            result: dict[str, Any] = {"model_version": model.version, "embedder": model.embedder}
            counts, sizes = self._counts_as_known(inputs[row], features.iloc[[row]], predictions, row,
                                                  known[row])
            for name in COUNT_TARGETS:
                result[name] = counts.get(name)
            result["authenticity_risk"] = risk.answer(predictions[risk.name],
                                                      row) if risk.name in predictions else None
            result["risk_label"] = model.risk_label
            own = features.iloc[row]
            result["flags"] = knowledge_flags(account=draft.account, known=known[row],
                                              early=inputs[row].early,
                followers=draft.followers, sizes=sizes, history_sent=bool(draft.history))
            result["flags"] += draft_flags(own, model.norms,
                                           window_hours=model.settings.features.duplicate_window_hours)
            result["factors"] = (top_factors(features.iloc[[row]], likes_model, n_factors)
                                 if likes_model is not None else [])
            result["draft_skill"] = skill
            result["feed"] = feed_preview(draft, own, model.norms)
            answer = ScoreAnswer.model_validate(result)
            # The draft's feature row, for the outcome store (serving records it; the JSON never carries it).
            answers.append(answer.with_features({str(k): (float(v) if np.isfinite(v) else None)
                                                 for k, v in own.astype(float).items()}))
        return answers

    def _count_as_known(self, name: str, values: dict[str, float], features: pd.DataFrame,
                        context: Sequence[pd.DataFrame], known: bool,
                        followers: int | None) -> tuple[dict[str, float], Any]:
        """One count target's log1p prediction for one draft (`features`: its row), as far as the model knows
        the account (engage/model/known.py): an unknown account sent with its follower count is put at the
        level of the training accounts of its size; the expected count stays inside the range of the account's
        own posts in `context` (the draft's earlier rows, in one or more tables). Also the size level used
        (None when none was)."""
        # The model's own level for this draft: the level model's answer (what a post of this account would
        # get now), which the similar accounts' level replaces for an account the model does not know.
        size = None if known or "level" not in values else self.prepared.sizes.level(name, followers)
        if size is not None:
            values = rebase(values, values["level"], size)
        return within_own_range(values, _counts(context, TARGETS[name].column)), size

    def _counts_as_known(self, inputs: DraftInputs, features: pd.DataFrame, predictions: dict[str, Any],
                         row: int,
                         known: bool) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
        """Each count target's answer for one draft (`_count_as_known`), and the size levels used."""
        answers, sizes = {}, {}
        context = [inputs.stored, inputs.rows.iloc[:-1]]  # read column by column: no table built per draft
        for name, prediction in predictions.items():
            if TARGETS[name].kind != "count":
                continue
            values, size = self._count_as_known(name, {k: float(v[row]) for k, v in prediction.items()},
                                                features,
                                                context, known, inputs.draft.followers)
            if size is not None:
                sizes[name] = size
            answers[name] = TARGETS[name].answer({k: np.array([v]) for k, v in values.items()}, 0)
        return answers, sizes

    def score_isolated(self, inputs: list[DraftInputs]) -> list[Answer | BaseException]:
        """`score_batch`, where a draft that fails does not fail the others: the batch is scored again one
        draft at a time and each failing draft gets its own
        exception (raised in its own request by `score`)."""
        try:
            return list(self.score_batch(inputs))
        except Exception:
            if len(inputs) == 1:
                raise
        answers: list[Answer | BaseException] = []
        for one in inputs:
            try:
                answers.append(self.score_batch([one])[0])
            except Exception as e:
                answers.append(e)
        return answers

    # -- the answers -----------------------------------------------------------------------------
    def score(self, draft: Draft, *, n_factors: int = 6) -> Answer:
        """The API's answer for one draft: every count target with a range (None where the model has none),
        risk, flags, factors and the feed preview. With a batcher, drafts scored at the same time share the
        embedders' forward passes, the feature table and the models' calls."""
        inputs = self.prepare(draft)
        inputs.n_factors = n_factors
        if self.batcher is None:
            return self.score_batch([inputs])[0]
        answer = self.batcher.submit([inputs])[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def score_many(self, drafts: Sequence[Draft | EngageError], *, chunk: int = SCORE_CHUNK
                   ) -> list[Answer | EngageError]:
        """The answers for a table's drafts, in order, `chunk` drafts prepared and scored together.

        An entry that is already an error (a row that could not become a draft) is passed through; a draft
        that cannot be scored gets its own `EngageError` in its place and the others are scored as usual.
        An error that is no draft's fault (a bug) is raised, never passed off as a bad row."""
        out: list[Answer | EngageError | None] = []
        waiting: list[tuple[int, DraftInputs]] = []

        def flush() -> None:
            for (position, _), answer in zip(waiting, self.score_isolated([i for _, i in waiting]),
                                             strict=True):
                if isinstance(answer, BaseException) and not isinstance(answer, EngageError):
                    raise answer
                out[position] = answer
            waiting.clear()

        for draft in drafts:
            out.append(draft if isinstance(draft, EngageError) else None)
            if isinstance(draft, EngageError):
                continue
            try:
                waiting.append((len(out) - 1, self.prepare(draft)))
            except EngageError as e:
                out[-1] = e
                continue
            if len(waiting) >= chunk:
                flush()
        if waiting:
            flush()
        unanswered = [position for position, answer in enumerate(out) if answer is None]
        if unanswered:  # every position is filled by flush; a hole is a bug, never a row to drop
            raise RuntimeError(f"score_many left drafts {unanswered[:10]} without an answer")
        return [answer for answer in out if answer is not None]

    def best_hour(self, draft: Draft, *, days: int = 7, start: datetime | None = None,
                  goal: str = "likes", time_zone: str = DEFAULT_TIME_ZONE) -> BestHour:
        """The hour in the next `days` days with the highest expected `goal` (a count target) for this draft.

        The hours are those of `time_zone` (an IANA name: Asia/Kolkata's start at :30 UTC), and the answer
        gives the hour in that zone (`posted_at` with its offset) and names the zone (`time_zone`)."""
        model = self.model
        if goal not in model.models or TARGETS[goal].kind != "count":
            raise ModelError(f"this model has no {goal} target, so it cannot pick a posting hour for it; "
                             f"choose one of {', '.join(n for n in COUNT_TARGETS if n in model.models)}")
        zone = time_zone_info(time_zone)
        local_start = (start or datetime.now(UTC)).astimezone(zone).replace(minute=0, second=0, microsecond=0)
        # Hours counted in UTC from the zone's next whole hour: a day with a DST change has 23 or 25 of them.
        first = local_start.astimezone(UTC) + timedelta(hours=1)
        candidates = [pd.Timestamp(first + timedelta(hours=h)) for h in range(days * 24)]
        posts, vectors, known = self.draft_context(draft.model_copy(update={"posted_at": first}), first)
        duplicates = self.draft_duplicates(draft, vectors, candidates)
        features = model.pipeline.transform_at_times(posts, vectors, len(posts) - 1, candidates,
                                                     duplicates=duplicates)
        expected = model.models[goal].predict_log1p(features)["expected"]
        best = int(np.argmax(expected))

        # the figure `score` would give at that hour (engage/model/known.py)
        def as_known(name: str) -> float:
            row = features.iloc[[best]]
            values = {k: float(v[0]) for k, v in model.models[name].predict_log1p(row).items()}
            values, _ = self._count_as_known(name, values, row, [posts.iloc[:-1]], known, draft.followers)
            return round(float(np.expm1(max(values["expected"], 0.0))), 2)

        return BestHour(posted_at=candidates[best].tz_convert(zone).to_pydatetime(), time_zone=time_zone,
                        goal=goal,
            expected=as_known(goal), expected_likes=as_known("likes") if "likes" in model.models else None)

    def compare(self, drafts: Sequence[Draft], *, goal: str = "likes", best_hour: bool = False,
                time_zone: str = DEFAULT_TIME_ZONE) -> Comparison:
        """Drafts of one account ranked by their expected `goal` count, best first, with the difference each
        makes and, with `best_hour`, when to post the top one (engage/scoring/compare.py, which /v1/compare
        runs too)."""
        return compare(self, drafts, goal=goal, best_hour=best_hour, time_zone=time_zone)


def _counts(frames: Sequence[pd.DataFrame], column: str) -> np.ndarray:
    """A count column of several tables, one after another, as float64 (NaN where unknown or not a number)."""
    parts = []
    for frame in frames:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            values = pd.to_numeric(values, errors="coerce")
        parts.append(values.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.concatenate(parts) if parts else np.zeros(0)
