"""Where a run's heavy work happens: on this machine (`local`) or on a Ray cluster (`ray`).

The feature pipeline and the models never know which: they hand the heavy steps to an engine object,
and both engines run the same feature and model functions. The local engine calls them directly; the
Ray engine (`engage.distributed`) spreads the same calls over a cluster:

    step                      local                                  ray
    photo / caption vectors   embedder in this process               Ray Data actor pools of embedders
    photo quality             threads                                Ray Data tasks
    history features          the whole table at once                one task per block of whole accounts
    same-day duplicates       the whole table at once                one task per time block (+ window overlap)
    LightGBM estimators       `estimator.fit`                        Ray Train LightGBMTrainer, data parallel

`open_engine(settings)` is the one switch (`runtime.engine`); it starts and stops Ray for the run. Ray is
imported only when the Ray engine is asked for, so the local engine needs no Ray installed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from engage.errors import ConfigError

if TYPE_CHECKING:
    from engage.config import Settings
    from engage.features.pipeline import FeaturePipeline
    from engage.model.targets import LightGBMJob


class Engine(Protocol):
    """The heavy steps of a run; `engage.engine.LocalEngine` is the reference implementation."""

    name: str
    chunk_size: int  # new vectors computed (and cached) per call of the embedding steps

    def embed_images(self, pipeline: FeaturePipeline, paths: list[str]) -> np.ndarray: ...
    def measure_quality(self, pipeline: FeaturePipeline, paths: list[str]) -> np.ndarray: ...
    def embed_captions(self, pipeline: FeaturePipeline, captions: list[str]) -> np.ndarray: ...
    def history(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, n_last: int,
                rows: np.ndarray) -> pd.DataFrame: ...
    def duplicates(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, rows: np.ndarray,
                   image_threshold: float, caption_threshold: float, window_hours: float) -> pd.DataFrame: ...
    def fit_lightgbm(self, jobs: list[LightGBMJob]) -> list[Any]: ...


class LocalEngine:
    """Everything in this process: the feature and model functions called directly."""

    name = "local"
    chunk_size = 256  # small chunks: a killed run loses at most 256 vectors

    def embed_images(self, pipeline: FeaturePipeline, paths: Sequence[str]) -> np.ndarray:
        return pipeline.image_embedder.embed_paths(list(paths), progress=False)

    def measure_quality(self, pipeline: FeaturePipeline, paths: Sequence[str]) -> np.ndarray:
        from engage.features.quality import quality_for_paths

        return quality_for_paths(list(paths), progress=False, version=pipeline.quality_version)

    def embed_captions(self, pipeline: FeaturePipeline, captions: Sequence[str]) -> np.ndarray:
        return pipeline.text_embedder.embed(list(captions))

    def history(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, n_last: int,
                rows: np.ndarray) -> pd.DataFrame:
        from engage.features.history import history_features

        return history_features(posts, image, caption, n_last=n_last, rows=rows)

    def duplicates(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, rows: np.ndarray,
                   image_threshold: float, caption_threshold: float, window_hours: float) -> pd.DataFrame:
        from engage.features.duplicates import same_day_duplicates

        return same_day_duplicates(posts, image, caption, image_threshold=image_threshold,
                                   caption_threshold=caption_threshold, window_hours=window_hours, rows=rows)

    def fit_lightgbm(self, jobs: list[LightGBMJob]) -> list[Any]:
        from engage.model.targets import fit_locally

        return fit_locally(jobs)


LOCAL = LocalEngine()


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The engine `settings.runtime.engine` names, ready for the run; Ray is shut down after it."""
    if settings.runtime.engine == "local":
        yield LOCAL
        return
    try:
        from engage.distributed.engine import ray_engine
    except ImportError as e:
        raise ConfigError(
            f"runtime.engine=ray needs Ray, which is not installed ({e}); install the extra with "
            "pip install -e \".[ray]\" or run with runtime.engine=local"
        ) from e
    with ray_engine(settings) as engine:
        yield engine
