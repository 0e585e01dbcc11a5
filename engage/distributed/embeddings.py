"""Photo and caption vectors on Ray Data: CPU decoding in parallel tasks streaming into embedder actors.

    paths -> map_batches(decode, tasks)  -> map_batches(PhotoEmbedder, actor pool) -> driver
    captions ------------------------------> map_batches(CaptionEmbedder, actor pool) -> driver
    paths -> map_batches(measure quality, tasks) ----------------------------------------> driver

Each actor builds its embedder once, from the driver's pipeline (its settings, with `auto` already
resolved), and refuses to run when it built a different embedder than the driver (a node without the CLIP
weights would otherwise fall back to EfficientNet). Actors ask for a GPU each when the cluster has GPUs.

The driver keeps the content-hash vector cache: `FeaturePipeline.embed` asks this module only for the
vectors the cache lacks, and stores what comes back, so local and Ray runs share vectors. Decoding and the
forward pass are the local path's own (`_DecodeDataset`, `encode_pixels`), so a photo gets the same vector
on either engine. Workers read the photos by path: on a cluster the paths must name shared storage.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import ray
import torch
from tqdm.auto import tqdm

from engage.config import RuntimeSettings
from engage.embed.decoding import FULL_DECODING, PhotoDecoding
from engage.embed.image import _DecodeDataset, warn_failures
from engage.engine import VectorSource
from engage.errors import EmbedderMismatchError
from engage.features.pipeline import FeaturePipeline
from engage.features.quality import quality_for_paths

log = logging.getLogger(__name__)


def _actor_pipeline(pipeline: VectorSource) -> FeaturePipeline:
    """A fresh pipeline with the driver's settings (embedders are rebuilt on the worker, never shipped)."""
    return FeaturePipeline(**pipeline.get_params())


def _check_same(kind: str, built: str, expected: str) -> None:
    if built != expected:
        raise EmbedderMismatchError(
            f"a Ray worker built {kind} embedder {built!r} but "
            f"the driver uses {expected!r}; install the same "
            "weights on every node (or set image.clip_checkpoint to shared storage)"
        )


def _decode(batch: dict[str, np.ndarray], preprocess: Any, size: int,
            decoding: PhotoDecoding = FULL_DECODING) -> dict[str, np.ndarray]:
    """Photo files -> preprocessed pixels (the local path's decoder, decoding as the model decodes); a
    failure is a zero image + message."""
    decoder = _DecodeDataset(list(batch["path"]), preprocess, size, decoding)
    items = [decoder[i] for i in range(len(decoder))]
    return {
        "row": batch["row"],
        "pixels": np.stack([pixels.numpy() for pixels, _ in items]).astype(np.float32),
        "error": np.array([error for _, error in items], dtype=object),
    }


class PhotoEmbedder:
    """A Ray Data actor: preprocessed pixels -> unit image vectors (NaN rows for photos that failed)."""

    def __init__(self, pipeline: VectorSource, expected_id: str):
        self.embedder = _actor_pipeline(pipeline).image_embedder
        _check_same("image", self.embedder.id, expected_id)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = np.array([e == "" for e in batch["error"]], dtype=bool)
        vectors = np.full((len(ok), self.embedder.dim), np.nan, dtype=np.float32)
        if ok.any():
            pixels = torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok])).to(self.embedder.device)
            vectors[ok] = self.embedder.encode_pixels(pixels).cpu().numpy()
        return {"row": batch["row"], "vector": vectors, "error": batch["error"]}


class CaptionEmbedder:
    """A Ray Data actor: captions -> caption vectors, by the same text embedder as the driver's."""

    def __init__(self, pipeline: VectorSource, expected_id: str):
        self.embedder = _actor_pipeline(pipeline).text_embedder
        _check_same("text", self.embedder.id, expected_id)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = np.asarray(self.embedder.embed([str(c) for c in batch["caption"]]), dtype=np.float32)
        return {"row": batch["row"], "vector": vectors}


def _measure(batch: dict[str, np.ndarray], threads: int, version: str,
             decoding: PhotoDecoding = FULL_DECODING) -> dict[str, np.ndarray]:
    vectors = quality_for_paths(list(batch["path"]), progress=False, num_threads=threads, version=version,
                                decoding=decoding)
    return {"row": batch["row"], "vector": vectors}


def _actor_resources(runtime: RuntimeSettings, gpus: float) -> dict[str, Any]:
    """A pool of up to `ray_workers` actors (it starts with one and grows while work queues up, so a small
    job does not wait for every actor to load its model); each takes one GPU when the cluster has GPUs."""
    resources: dict[str,
                    Any] = {"compute": ray.data.ActorPoolStrategy(min_size=1, max_size=runtime.ray_workers),
                                 "num_cpus": runtime.ray_cpus_per_worker}
    if gpus > 0:
        resources["num_gpus"] = 1
    return resources


def _collect(dataset: ray.data.Dataset, n: int, dim: int, desc: str) -> tuple[np.ndarray, dict[int, str]]:
    """Stream the results to the driver in row order; (vectors, row -> error)."""
    out = np.full((n, dim), np.nan, dtype=np.float32)
    errors: dict[int, str] = {}
    with tqdm(total=n, desc=desc, unit="item") as bar:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows = batch["row"].astype(int)
            out[rows] = np.stack(list(batch["vector"])) if batch["vector"].dtype == object else batch[
                "vector"]
            for row, error in zip(rows, batch.get("error", [""] * len(rows)), strict=True):
                if error:
                    errors[int(row)] = str(error)
            bar.update(len(rows))
    return out, errors


def embed_images(pipeline: VectorSource, paths: list[str], runtime: RuntimeSettings,
                 gpus: float) -> np.ndarray:
    """Image vectors of `paths` (float32 `(n, dim)`, NaN rows for files that failed, which are logged)."""
    embedder = pipeline.image_embedder
    batch_size = pipeline.get_params()["image"].batch_size
    dataset = (
        ray.data.from_items([{"row": i, "path": p} for i, p in enumerate(paths)])
        # Ray's stubs want a function of the batch alone
        # (fn_kwargs supplies the rest): hence the ignore below.
        .map_batches(_decode, fn_kwargs={"preprocess": embedder.preprocess,  # type: ignore[arg-type]
                                         "size": embedder.input_size, "decoding": pipeline.photo_decoding},
                     batch_size=batch_size, num_cpus=runtime.ray_cpus_per_worker)
        .map_batches(PhotoEmbedder, fn_constructor_kwargs={"pipeline": pipeline, "expected_id": embedder.id},
                     batch_size=batch_size, **_actor_resources(runtime, gpus))
    )
    vectors, errors = _collect(dataset, len(paths), embedder.dim, f"embedding photos on Ray ({embedder.id})")
    warn_failures({paths[row]: why for row, why in errors.items()}, embedder.id)
    return vectors


def embed_captions(pipeline: VectorSource, captions: list[str], runtime: RuntimeSettings,
                   gpus: float) -> np.ndarray:
    embedder = pipeline.text_embedder
    dataset = ray.data.from_items([{"row": i, "caption": c} for i, c in enumerate(captions)]).map_batches(
        CaptionEmbedder, fn_constructor_kwargs={"pipeline": pipeline, "expected_id": embedder.id},
        batch_size=256, **_actor_resources(runtime, gpus),
    )
    vectors, _ = _collect(dataset, len(captions), embedder.dim, f"embedding captions on Ray ({embedder.id})")
    return vectors


def measure_quality(paths: list[str], runtime: RuntimeSettings, n_columns: int, version: str,
                    decoding: PhotoDecoding = FULL_DECODING) -> np.ndarray:
    threads = max(1, int(runtime.ray_cpus_per_worker))
    dataset = ray.data.from_items([{"row": i, "path": p} for i, p in enumerate(paths)]).map_batches(
        _measure,  # type: ignore[arg-type]  # Ray's stubs want a function of the batch alone; fn_kwargs has the rest
        fn_kwargs={"threads": threads, "version": version, "decoding": decoding}, batch_size=64,
        num_cpus=runtime.ray_cpus_per_worker,
    )
    vectors, _ = _collect(dataset, len(paths), n_columns, "measuring photo quality on Ray")
    return vectors
