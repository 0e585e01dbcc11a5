"""The Ray engine: `engage.engine.Engine` with each heavy step spread over a Ray cluster.

`ray_engine(settings)` starts or joins Ray for the run (`engage.distributed.cluster`) and yields the
engine; Ray is shut down when the block ends. The driver keeps everything that is not heavy: the vector
cache, the PCA, the models' priors and calibration, evaluation and MLflow.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from engage.config import RuntimeSettings, Settings
from engage.distributed import boosting, embeddings, features
from engage.distributed.cluster import cluster_gpus, ray_session
from engage.engine import LightGBMJob, VectorSource
from engage.features.quality import QUALITY_COLUMNS


class RayEngine:
    name = "ray"
    # Vectors per Ray Data job: large, since a job costs a
    # second or two to start; still cached chunk by chunk.
    chunk_size = 4096

    def __init__(self, runtime: RuntimeSettings, storage: str):
        self.runtime = runtime
        self.storage = storage  # where Ray Train writes the fitted estimators' checkpoints
        self.gpus = cluster_gpus()
        # Partitions per feature step: a few per worker, so a slow block does not hold up the rest.
        self.blocks = 2 * runtime.ray_workers

    def embed_images(self, pipeline: VectorSource, paths: list[str]) -> np.ndarray:
        return embeddings.embed_images(pipeline, list(paths), self.runtime, self.gpus)

    def measure_quality(self, pipeline: VectorSource, paths: list[str]) -> np.ndarray:
        return embeddings.measure_quality(list(paths), self.runtime, len(QUALITY_COLUMNS),
                                          pipeline.quality_version, pipeline.photo_decoding)

    def embed_captions(self, pipeline: VectorSource, captions: list[str]) -> np.ndarray:
        return embeddings.embed_captions(pipeline, list(captions), self.runtime, self.gpus)

    def history(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, n_last: int,
                rows: np.ndarray) -> pd.DataFrame:
        return features.history_on_blocks(posts, image, caption, n_last=n_last, rows=rows,
                                          n_blocks=self.blocks)

    def duplicates(self, posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, rows: np.ndarray,
                   image_threshold: float, caption_threshold: float, window_hours: float) -> pd.DataFrame:
        return features.duplicates_on_blocks(posts, image, caption, rows=rows, n_blocks=self.blocks,
            image_threshold=image_threshold, caption_threshold=caption_threshold,
                                             window_hours=window_hours)

    def fit_lightgbm(self, jobs: list[LightGBMJob]) -> list[Any]:
        return boosting.fit_on_ray(jobs, runtime=self.runtime, storage=self.storage)


@contextmanager
def ray_engine(settings: Settings) -> Iterator[RayEngine]:
    runtime = settings.runtime
    with ray_session(runtime):
        if runtime.ray_storage is not None:
            yield RayEngine(runtime, runtime.ray_storage)
            return
        # A single machine's run keeps its checkpoints in a temporary directory removed after it.
        with tempfile.TemporaryDirectory(prefix="engage-ray-") as storage:
            yield RayEngine(runtime, storage)
