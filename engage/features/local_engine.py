"""The local engine: every heavy step of a run in this
process, the feature and model functions called directly.

`LOCAL` is the default wherever an engine is accepted (`FeaturePipeline.embed` / `transform`, training's
fits); `engage.engines.open_engine` hands it out for
`runtime.engine=local`. The contract is `engage.engine.Engine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from engage.engine import LightGBMJob, VectorSource, fit_locally
from engage.features.duplicates import same_day_duplicates
from engage.features.history import history_features
from engage.features.quality import quality_for_paths


class LocalEngine:
    """Everything in this process: the feature and model functions called directly."""

    name = "local"
    chunk_size = 256  # small chunks: a killed run loses at most 256 vectors

    def embed_images(self, pipeline: VectorSource, paths: Sequence[str]) -> np.ndarray:
        # A scaled decoding is asked only of embedders that state their input size (`photo_decoding`); the
        # registry's contract (`embed_paths(paths, progress)`) stays enough for a new embedder.
        decoding = pipeline.photo_decoding
        options = {} if decoding.version == "full" else {"decoding": decoding}
        return pipeline.image_embedder.embed_paths(list(paths), progress=False, **options)

    def measure_quality(self, pipeline: VectorSource, paths: Sequence[str]) -> np.ndarray:
        return quality_for_paths(list(paths), progress=False, version=pipeline.quality_version,
                                 decoding=pipeline.photo_decoding)

    def embed_captions(self, pipeline: VectorSource, captions: Sequence[str]) -> np.ndarray:
        return pipeline.text_embedder.embed(list(captions))

    def history(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, n_last: int,
                rows: np.ndarray) -> pd.DataFrame:
        return history_features(posts, image, caption, n_last=n_last, rows=rows)

    def duplicates(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, rows: np.ndarray,
                   image_threshold: float, caption_threshold: float, window_hours: float) -> pd.DataFrame:
        return same_day_duplicates(posts, image, caption, image_threshold=image_threshold,
                                   caption_threshold=caption_threshold, window_hours=window_hours, rows=rows)

    def fit_lightgbm(self, jobs: list[LightGBMJob]) -> list[Any]:
        return fit_locally(jobs)


LOCAL = LocalEngine()
