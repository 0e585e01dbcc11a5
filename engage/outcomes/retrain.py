"""Retraining from outcomes: recorded posts join the training data, and a model so trained becomes champion
only when it beats the champion on the most recent posts neither has trained on.

    python train.py data.outcomes=true          # the store beside the tracking store (or data.outcomes_url)

`recorded_posts(store)` turns every published draft with an outcome into a row of the canonical posts table
(its latest recorded counts; its photo when the store kept it, else none). `compare_with_champion` scores the
evaluation posts (the new model's held-out latest posts that the champion did not train on either, from the
`trained_posts.txt` each run logs) with both models, each through its own feature pipeline on the same posts
and history, and decides with MLflow's `MetricThreshold` on the mean absolute error of log(1 + likes): the new
model must lower it by `train.outcome_min_improvement` (relative) or it is registered as challenger, with the
figures as the reason.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engage.data.schema import CANONICAL, OUTCOME_COUNTS, LoadReport, sort_posts, validate_posts
from engage.outcomes.accuracy import comparable
from engage.outcomes.store import OutcomeStore, default_url

log = logging.getLogger(__name__)

#: The metric a model retrained from outcomes is judged on (lower is better).
OUTCOME_METRIC = "outcome_likes_mae_log"
#: Fewer evaluation posts than this cannot decide a promotion.
MIN_EVALUATION_POSTS = 10
TRAINED_POSTS_ARTIFACT = "trained_posts.txt"


def outcomes_url(settings: Any) -> str:
    """data.outcomes_url, else the store serve.py uses by default for a registry model."""
    return settings.data.outcomes_url or default_url("models:/", settings.tracking.uri)


def recorded_posts(store: OutcomeStore, photo_dir: str | Path) -> pd.DataFrame:
    """Every published draft with an outcome as a canonical post (latest recorded age); stored photos are
    written to `photo_dir` (named by content hash) so the training pipeline reads them like any post's
    photo."""
    frame = comparable(store.outcomes_frame())
    if frame.empty:
        return validate_posts(pd.DataFrame({c: [] for c in CANONICAL}), file=repr(store))
    photo_dir = Path(photo_dir)
    images = []
    for photo in frame["photo"]:
        images.append(_write_photo(bytes(photo),
                                   photo_dir) if isinstance(photo, bytes | bytearray) and photo else None)
    rows = pd.DataFrame({
        "account": frame["account"], "post_id": frame["post_id"], "posted_at": frame["posted_at"],
        "caption": frame["caption"], "followers": frame["followers"], "sponsored": frame["sponsored"],
        "image": images, "is_video": False,
        **{name: frame[name] for name in OUTCOME_COUNTS},
    })
    return validate_posts(rows, file=f"outcome store {store}", hidden_likes=True)


def _write_photo(photo: bytes, directory: Path) -> str:
    import hashlib

    from PIL import Image

    try:
        kind = (Image.open(io.BytesIO(photo)).format or "img").lower()
    except OSError:
        kind = "img"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{hashlib.sha256(photo).hexdigest()}.{kind}"
    if not path.exists():
        tmp = path.with_suffix(f".{kind}.tmp")
        tmp.write_bytes(photo)
        tmp.replace(path)
    return str(path)


def add_recorded_posts(posts: pd.DataFrame, settings: Any) -> pd.DataFrame:
    """`posts` with the outcome store's recorded posts added (those already in `posts`, by account and post
    id, are left out: a later dump holds them), the load report saying how many."""
    url = outcomes_url(settings)
    store = OutcomeStore(url)
    recorded = recorded_posts(store, Path(settings.features.cache_dir) / "outcome_photos")
    report = posts.attrs.get("report") or LoadReport(source=settings.data.source,
                                                     path=str(settings.data.path))
    known = set(zip(posts["account"], posts["post_id"], strict=True))
    fresh = recorded[[(a, p) not in known for a,
                      p in zip(recorded["account"], recorded["post_id"], strict=True)]]
    with_photo = int(fresh["image"].notna().sum())
    already = f"; {len(recorded) - len(fresh)} already in the data" if len(fresh) < len(recorded) else ""
    report.notes.append(
        f"{len(fresh)} published drafts added from the outcome store {store} ({with_photo} with their "
                        f"photo){already}")
    combined = sort_posts(pd.concat([posts, fresh], ignore_index=True)).reset_index(drop=True)
    combined = validate_posts(combined, file="training posts and outcome store", hidden_likes=True)
    report.rows = len(combined)
    combined.attrs["report"] = report
    return combined


def trained_posts_text(posts: pd.DataFrame, rows: np.ndarray) -> str:
    """`account<TAB>post_id` of the posts a model was fitted on (train and validation), one a line."""
    chosen = posts.iloc[np.sort(rows)]
    return "".join(f"{a}\t{p}\n" for a, p in zip(chosen["account"], chosen["post_id"], strict=True))


@dataclass
class Comparison:
    alias: str
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


def _champion_trained(client: Any, champion: Any, posts: pd.DataFrame) -> np.ndarray:
    """Mask of `posts` the champion was fitted on: from its run's trained_posts.txt, else every post up to the
    last one of its data (a champion from before the list was logged)."""
    import mlflow

    try:
        text = mlflow.artifacts.load_text(f"runs:/{champion.run_id}/{TRAINED_POSTS_ARTIFACT}")
        pairs = {tuple(line.split("\t", 1)) for line in text.splitlines() if "\t" in line}
        return np.array([(a, p) in pairs for a, p in zip(posts["account"], posts["post_id"], strict=True)])
    except Exception:  # an older champion: fall back on its data's date range
        run = client.get_run(champion.run_id)
        last = run.data.params.get("data_last_post") or run.data.tags.get("data_last_post")
        if last is None:
            return np.ones(len(posts), dtype=bool)  # nothing is known to be unseen: no fair comparison
        return (posts["posted_at"] <= pd.Timestamp(last)).to_numpy()


def compare_with_champion(settings: Any, client: Any, posts: pd.DataFrame, new_features: pd.DataFrame,
        new_models: dict[str, Any], test: np.ndarray, *, progress: bool = False) -> Comparison | None:
    """The outcome-based promotion decision, or None when there is no champion to compare with."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult

    from engage.model.bundle import EngageModel

    name = settings.tracking.registered_model
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None
    unseen = ~_champion_trained(client, champion, posts)
    rows = np.sort(test[unseen[test] & posts["likes"].notna().to_numpy()[test]])
    if len(rows) < MIN_EVALUATION_POSTS or "likes" not in new_models:
        return Comparison("challenger", f"only {len(rows)} recent posts neither model trained on (at least "
            f"{MIN_EVALUATION_POSTS} needed to compare with champion v{champion.version}); promote by hand")
    model = EngageModel.from_uri(f"models:/{name}@champion", settings.tracking.uri)
    if "likes" not in model.models:
        return Comparison("champion", f"champion v{champion.version} predicts no likes")
    vectors = model.pipeline.embed(posts, progress=progress)
    old_features = model.pipeline.transform(posts, vectors, rows)
    actual = np.log1p(posts["likes"].to_numpy(dtype=float)[rows])
    new = new_models["likes"].predict_log1p(new_features.iloc[rows])["expected"]
    old = model.models["likes"].predict_log1p(old_features)["expected"]
    new_mae, old_mae = float(np.mean(np.abs(new - actual))), float(np.mean(np.abs(old - actual)))
    threshold = settings.train.outcome_min_improvement
    metrics = {OUTCOME_METRIC: new_mae, f"champion_{OUTCOME_METRIC}": old_mae,
               "outcome_evaluation_posts": float(len(rows))}
    figures = (
        f"on the {len(rows)} latest posts neither trained on, MAE of log(1+likes) {new_mae:.4f} against "
               f"champion v{champion.version}'s {old_mae:.4f}")
    from mlflow import validate_evaluation_results
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    try:
        validate_evaluation_results(
            {OUTCOME_METRIC: MetricThreshold(min_relative_change=threshold, greater_is_better=False)},
            EvaluationResult(metrics={OUTCOME_METRIC: new_mae}, artifacts={}),
            EvaluationResult(metrics={OUTCOME_METRIC: old_mae}, artifacts={}),
        )
    except ModelValidationFailedException:
        return Comparison("challenger",
                          f"{figures}: not {threshold:.0%} better (train.outcome_min_improvement)", metrics)
    return Comparison("champion", f"{figures}: at least {threshold:.0%} better", metrics)
