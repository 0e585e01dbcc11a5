"""The engine contract: where a run's heavy steps happen, as the feature and model layers see it.

The feature pipeline and the models never know whether they run here or on a Ray cluster: they hand the
heavy steps to an object that satisfies `Engine`, and every engine runs the same feature and model functions:

    step                      local (engage/features/local_engine.py)   ray (engage/distributed/engine.py)
    photo / caption vectors   embedder in this process                  Ray Data actor pools of embedders
    photo quality             threads                                   Ray Data tasks
    history features          the whole table at once                   one task per block of whole accounts
    same-day duplicates       the whole table at once                   one task per time block (+ window
    overlap) LightGBM estimators       `fit_locally`                             Ray Train LightGBMTrainer,
    data parallel

This module sits at the bottom of the house (it imports nothing of engage), so both the layers that accept
an engine and the engines themselves can import it. `engage.engines.open_engine(settings)` picks one by
name (`runtime.engine`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import lightgbm as lgb


class VectorSource(Protocol):
    """What an engine needs from a feature pipeline to compute vectors: its embedders, quality version and
    photo decoding (an `engage.embed.decoding.PhotoDecoding`)."""

    @property
    def image_embedder(self) -> Any: ...

    @property
    def text_embedder(self) -> Any: ...

    @property
    def quality_version(self) -> str: ...

    @property
    def photo_decoding(self) -> Any: ...

    # its parameters: a cluster's workers rebuild the embedders from them
    def get_params(self) -> dict[str, Any]: ...


@dataclass
class LightGBMJob:
    """One LightGBM estimator to fit, early-stopped on `valid`: the unit an engine fits (here, or on Ray).

    `train_rows`: the positions of `train` this job fits on (None: every row; `y_train` and per-row
    `fit_params` are those rows' already). A count model's five fold jobs and its prospective job share
    one frame this way and each takes its rows only when it is fitted, instead of five copies of the
    training posts waiting side by side (at a million posts, gigabytes)."""

    estimator: lgb.LGBMModel
    train: pd.DataFrame
    y_train: np.ndarray
    valid: pd.DataFrame
    y_valid: np.ndarray
    early_stopping_rounds: int | None
    fit_params: dict[str, Any] = field(default_factory=dict)  # more arguments of fit (a ranker's group sizes)
    train_rows: np.ndarray | None = None

    def materialized(self) -> LightGBMJob:
        """This job with `train` holding only its rows (itself when it already does)."""
        if self.train_rows is None:
            return self
        return replace(self, train=self.train.iloc[self.train_rows], train_rows=None)


def fit_estimator(job: LightGBMJob) -> lgb.LGBMModel:
    """The one LightGBM call of every model (the Ray engine makes it on each worker, on its shard of the
    training rows, with LightGBM's network parameters set on the estimator)."""
    import lightgbm as lgb

    job = job.materialized()  # its rows copied now, and dropped once fitted

    callbacks: list[Callable[..., Any]] = (
        [lgb.early_stopping(job.early_stopping_rounds, verbose=False)] if job.early_stopping_rounds else [])
    return job.estimator.fit(job.train, job.y_train, eval_X=(job.valid,), eval_y=(job.y_valid,),
                             callbacks=callbacks,
                             **job.fit_params)


def fit_locally(jobs: Sequence[LightGBMJob]) -> list[lgb.LGBMModel]:
    """Each job fitted in this process, in order."""
    return [fit_estimator(job) for job in jobs]


class Engine(Protocol):
    """The heavy steps of a run; `engage.features.local_engine.LocalEngine`
    is the reference implementation."""

    name: str
    chunk_size: int  # new vectors computed (and cached) per call of the embedding steps

    def embed_images(self, pipeline: VectorSource, paths: list[str]) -> np.ndarray: ...
    def measure_quality(self, pipeline: VectorSource, paths: list[str]) -> np.ndarray: ...
    def embed_captions(self, pipeline: VectorSource, captions: list[str]) -> np.ndarray: ...
    def history(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, n_last: int,
                rows: np.ndarray) -> pd.DataFrame: ...
    def duplicates(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, rows: np.ndarray,
                   image_threshold: float, caption_threshold: float, window_hours: float) -> pd.DataFrame: ...
    def fit_lightgbm(self, jobs: list[LightGBMJob]) -> list[Any]: ...
