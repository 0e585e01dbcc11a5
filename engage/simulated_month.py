"""A simulated month of the outcome loop on the demo simulator: train, publish, record, retrain, measure.

    simulate_months(settings, work_dir)  ->  LoopResult (live MAE before and after the retrain)

The demo population's last two months are the future. A model is trained on the posts before them; in the
first month every account publishes its drafts: each is scored through the serving code path
(`score_and_record`, which records the prediction in the outcome store, photo kept) and its outcome, the
count the simulator gave the post, is recorded 7 days later. `python train.py data.outcomes=true` then
retrains with the recorded posts (`train`, the same code), and promotion is decided on the posts neither
model trained on. In the second month both models score the new drafts, and the live MAE of each against the
simulator's counts is what the retrain bought. Used by tests/outcomes/test_retrain_loop.py and
benchmarks/outcome_loop.py (figures in docs/results.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engage.outcomes.store import OutcomeRecord, OutcomeStore

#: Days of each simulated month.
MONTH_DAYS = 30


@dataclass
class LoopResult:
    first_model: str
    retrained_model: str
    retrained_alias: str
    retrained_reason: str
    month_one_posts: int
    month_two_posts: int
    # model -> {likes_mae, likes_mae_log, ...}
    live_mae: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # the retrain's outcome comparison
    #: retrained minus first model, MAE of log1p(likes) on month two: (mean, 95% low, 95% high) over accounts
    difference: tuple[float, float, float] = (float("nan"), float("nan"), float("nan"))
    # the retrain's settings (table, tracking and outcome stores in the work dir)
    retrain_settings: Any = None


def _drafts(posts: pd.DataFrame) -> list[Any]:
    from engage.model.draft import Draft

    drafts = []
    for post in posts.itertuples(index=False):
        image = Path(post.image).read_bytes() if isinstance(post.image, str) and post.image else None
        drafts.append(Draft(account=post.account, caption=post.caption, image=image, posted_at=post.posted_at,
                            followers=None if pd.isna(post.followers) else int(post.followers),
                            sponsored=None if pd.isna(post.sponsored) else bool(post.sponsored)))
    return drafts


def _expected_likes(answer: Any) -> float:
    likes = answer.count("likes")
    return float("nan") if likes is None else float(likes.expected)


def live_errors(model: Any, posts: pd.DataFrame) -> tuple[dict[str, float], np.ndarray]:
    """MAE of expected likes (counts and log1p) of `model` scoring `posts` as drafts, against their likes; and
    each post's absolute error of log1p(likes), for intervals over accounts."""
    expected = np.array([_expected_likes(model.score(d)) for d in _drafts(posts)], dtype=float)
    actual = posts["likes"].to_numpy(dtype=float)
    errors = np.abs(np.log1p(expected) - np.log1p(actual))
    return {"likes_mae": float(np.mean(np.abs(expected - actual))), "likes_mae_log": float(errors.mean()),
            "posts": float(len(posts))}, errors


def trailing_errors(posts: pd.DataFrame, month: pd.DataFrame, n_last: int) -> dict[str, float]:
    """What the account's own trailing average said: for each post of `month`, the mean log1p(likes) of the
    account's last `n_last` posts before it (all of `posts`: the outcomes as they came in)."""
    errors, counts = [], []
    for post in month.itertuples(index=False):
        earlier = posts[(posts["account"] == post.account) & (posts["posted_at"] < post.posted_at)].tail(
            n_last)
        level = float(np.log1p(earlier["likes"].dropna().to_numpy(dtype=float)).mean()) if len(
            earlier) else np.nan
        errors.append(abs(level - np.log1p(post.likes)))
        counts.append(abs(np.expm1(level) - post.likes))
    return {"likes_mae": float(np.nanmean(counts)), "likes_mae_log": float(np.nanmean(errors)),
            "posts": float(len(month))}


def paired_bootstrap(accounts: np.ndarray, before: np.ndarray, after: np.ndarray, *, n: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of `after - before` per post, with a 95% interval
    from resampling accounts (paired: the same posts)."""
    rng = np.random.default_rng(seed)
    names = np.unique(accounts)
    by_account = [np.flatnonzero(accounts == a) for a in names]
    diffs = after - before
    draws = []
    for _ in range(n):
        rows = np.concatenate([by_account[i] for i in rng.integers(0, len(names), len(names))])
        draws.append(diffs[rows].mean())
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(diffs.mean()), float(low), float(high)


def simulate_months(settings: Any, work_dir: str | Path, *, progress: bool = False,
                    retrain_overrides: dict[str, Any] | None = None) -> LoopResult:
    """The loop above, in `work_dir` (tables, MLflow store, outcome store). `settings` name the demo
    population (data.demo) and the training settings; `retrain_overrides` change the retrain's settings (e.g.
    a worse model)."""
    from engage.model.bundle import EngageModel
    from engage.scoring.scorer import Scorer
    from engage.serving.scoring import score_and_record
    from engage.training import load_training_posts, train

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    posts = load_training_posts(settings, progress=progress)
    end = posts["posted_at"].max()
    one_start, two_start = end - timedelta(days=2 * MONTH_DAYS), end - timedelta(days=MONTH_DAYS)
    base = posts[posts["posted_at"] < one_start]
    month_one = posts[(posts["posted_at"] >= one_start) & (posts["posted_at"] < two_start)]
    month_two = posts[posts["posted_at"] >= two_start]
    table = base.copy()
    table.attrs = {}  # the load report is not part of the table
    table.to_parquet(work / "base.parquet")
    tracking = f"sqlite:///{work / 'mlflow.db'}"
    outcomes = f"sqlite:///{work / 'outcomes.db'}"
    first_settings = settings.model_copy(deep=True)
    first_settings.data.source, first_settings.data.path = "table", str(work / "base.parquet")
    first_settings.tracking.uri = tracking
    first_settings.data.outcomes_url = outcomes
    first = train(first_settings, progress=progress)

    model = Scorer(EngageModel.from_uri(f"models:/{settings.tracking.registered_model}@champion", tracking))
    store = OutcomeStore(outcomes, keep_photos=True)
    for draft, post in zip(_drafts(month_one), month_one.itertuples(index=False), strict=True):
        answer = score_and_record(model, draft, store)  # what POST /v1/score does
        store.record_outcome(OutcomeRecord(score_id=answer.score_id, post_id=post.post_id,
                                           posted_at=post.posted_at.to_pydatetime(), age_hours=168,
            counts={"likes": int(post.likes), "comments": None if pd.isna(post.comments)
                                                   else int(post.comments)}))
    retrain_settings = first_settings.model_copy(deep=True)
    retrain_settings.data.outcomes = True
    for dotted, value in (retrain_overrides or {}).items():
        node = retrain_settings
        *path, key = dotted.split(".")
        for part in path:
            node = getattr(node, part)
        setattr(node, key, value)
    second = train(retrain_settings, progress=progress)

    retrained = Scorer(
        EngageModel.from_uri(f"models:/{settings.tracking.registered_model}/{second.model_version}",
                                            tracking))
    result = LoopResult(first_model=str(first.model_version), retrained_model=str(second.model_version),
                        retrained_alias=str(second.alias), retrained_reason=second.alias_reason,
                        month_one_posts=len(month_one), month_two_posts=len(month_two),
                        metrics={k: v for k, v in second.metrics.items() if "outcome" in k})
    result.live_mae["first, month one"] = live_errors(model, month_one)[0]
    result.live_mae["first, month two"], before = live_errors(model, month_two)
    result.live_mae["retrained, month two"], after = live_errors(retrained, month_two)
    result.live_mae["trailing average, month two"] = trailing_errors(posts, month_two,
                                                                     settings.features.history_posts)
    result.difference = paired_bootstrap(month_two["account"].to_numpy(), before, after)
    result.retrain_settings = retrain_settings
    return result
