"""Vectors of the posts sent for scoring (a draft and its account's history): each photo and caption once.

    vectors = DraftVectors(pipeline, cache_items=8192, max_batch_size=16, max_wait_ms=5)
    posts = vectors.embed([(photo_bytes, "caption"), (None, "another caption")])   # -> PostVectors

A photo is decoded, measured (`image_quality`) and preprocessed in the calling thread; then its pixels and
the captions go to the embedders. Two things make repeated and concurrent requests cheap:

* a bounded in-memory LRU of vectors keyed by the SHA-256 of the photo's bytes (image vector and quality
  measures) and of the caption's text (caption vector), so an account that sends the same history with
  every draft has it embedded once (`cache_items` = 0 turns it off);
* a `DynamicBatcher`: the pixels and captions of concurrent requests are embedded together, one forward
  pass per model (`max_batch_size` = 1 runs each request's own batch in its own thread instead).

The vectors are those `FeaturePipeline.embed` computes for a post at training time (same decoder, same
quality measures, same embedders), only without the disk cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from cachetools import LRUCache

from engage.errors import DataError
from engage.features.batching import DynamicBatcher
from engage.features.cache import text_sha256
from engage.features.decoding import MAX_PIXELS, open_image
from engage.features.quality import QUALITY_COLUMNS, image_quality

#: One post to embed: its photo's bytes (or None) and its caption.
PostInput = tuple[bytes | None, str]


class PostImageError(DataError):
    """A photo among the posts cannot be used; `index` is its position in the list given to `embed`."""

    def __init__(self, index: int, error: DataError):
        super().__init__(error.message, file=error.file, row=error.row, field=error.field)
        self.index = index


class VectorCache:
    """A thread-safe LRU of vectors by key, with hit and miss counts."""

    def __init__(self, max_items: int):
        if max_items < 0:
            raise ValueError(f"the vector cache size must be >= 0, got {max_items}")
        self.max_items = max_items
        self._items: LRUCache[tuple[str, str], Any] = LRUCache(maxsize=max(1, max_items))
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str]) -> Any:
        if self.max_items == 0:
            return None
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def put(self, key: tuple[str, str], value: Any) -> None:
        if self.max_items:
            with self._lock:
                self._items[key] = value

    def __len__(self) -> int:
        return len(self._items) if self.max_items else 0

    def info(self) -> dict[str, int]:
        return {"max_items": self.max_items, "items": len(self), "hits": self.hits, "misses": self.misses}


class DraftVectors:
    """Image, caption and quality vectors of posts given as bytes and text, for one fitted pipeline."""

    def __init__(
        self,
        pipeline: Any,
        *,
        cache_items: int = 0,
        max_batch_size: int = 1,
        max_wait_ms: float = 0.0,
        expected_callers: Callable[[], int] | None = None,
        max_pixels: int | None = None,
    ):
        self.pipeline = pipeline
        self.cache = VectorCache(cache_items)
        self.max_pixels = max_pixels or MAX_PIXELS
        self.batcher: DynamicBatcher[tuple[str, Any], np.ndarray] | None = None
        if max_batch_size > 1:
            self.batcher = DynamicBatcher(self._forward, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                          expected_callers=expected_callers, name="embed-batcher")

    def settings(self) -> dict[str, Any]:
        """What /ready reports: the batching settings and the cache's size and use."""
        batching = self.batcher.settings() | self.batcher.stats.as_dict() if self.batcher else {"max_batch_size": 1}
        return {"batching": batching, "vector_cache": self.cache.info()}

    def _forward(self, items: list[tuple[str, Any]]) -> list[np.ndarray]:
        """One forward pass per model over preprocessed pixels ("image") and captions ("caption")."""
        images = [i for i, (kind, _) in enumerate(items) if kind == "image"]
        captions = [i for i, (kind, _) in enumerate(items) if kind == "caption"]
        out: list[np.ndarray] = [np.empty(0)] * len(items)
        if images:
            embedder = self.pipeline.image_embedder
            pixels = torch.stack([items[i][1] for i in images]).to(embedder.device)
            for i, row in zip(images, embedder.encode_pixels(pixels).cpu().numpy(), strict=True):
                out[i] = row
        if captions:
            vectors = self.pipeline.text_embedder.embed([items[i][1] for i in captions])
            for i, row in zip(captions, np.asarray(vectors, dtype=np.float32), strict=True):
                out[i] = row
        return out

    def check_image(self, image: bytes, name: str) -> None:
        """Raise `DataError` (named `name`) unless `image` decodes; free for a photo already embedded."""
        if self.cache.get(("image", hashlib.sha256(image).hexdigest())) is None:
            open_image(image, max_pixels=self.max_pixels, name=name)

    def embed(self, posts: Sequence[PostInput]) -> Any:
        """`PostVectors` of `posts` in order (NaN image and quality rows for a post without a photo).

        Raises `PostImageError` with the position of the first photo that cannot be decoded.
        """
        from engage.features.pipeline import PostVectors

        n = len(posts)
        image = np.full((n, self.pipeline.image_embedder.dim), np.nan, dtype=np.float32)
        quality = np.full((n, len(QUALITY_COLUMNS)), np.nan, dtype=np.float32)
        caption = np.empty((n, self.pipeline.text_embedder.dim), dtype=np.float32)
        work: list[tuple[str, Any]] = []  # what the embedders must compute, deduplicated
        targets: list[tuple[str, str]] = []  # its cache key, in the same order
        measured: dict[str, np.ndarray] = {}
        wanted: dict[tuple[str, str], list[int]] = {}  # key -> the rows it fills
        found: dict[tuple[str, str], Any] = {}  # held here: another thread may evict it from the cache meanwhile
        for index, (photo, text) in enumerate(posts):
            keys = [("caption", text_sha256(text))]
            if photo is not None:
                keys.append(("image", hashlib.sha256(photo).hexdigest()))
            for key in keys:
                if key in wanted:
                    wanted[key].append(index)
                    continue
                wanted[key] = [index]
                cached = self.cache.get(key)
                if cached is not None:
                    found[key] = cached
                    continue
                if key[0] == "caption":
                    work.append(("caption", text))
                else:
                    try:
                        picture = open_image(photo, max_pixels=self.max_pixels, name="image")  # type: ignore[arg-type]
                    except DataError as e:
                        raise PostImageError(index, e) from e
                    measures = image_quality(picture)
                    measured[key[1]] = np.array([measures[c] for c in QUALITY_COLUMNS], dtype=np.float32)
                    work.append(("image", self.pipeline.image_embedder.preprocess(picture)))
                targets.append(key)
        if work:
            results = self.batcher.submit(work) if self.batcher is not None else self._forward(work)
            for key, vector in zip(targets, results, strict=True):
                found[key] = (vector, measured[key[1]]) if key[0] == "image" else vector
                self.cache.put(key, found[key])
        for key, rows in wanted.items():
            if key[0] == "image":
                image[rows], quality[rows] = found[key]
            else:
                caption[rows] = found[key]
        return PostVectors(image, caption, quality)
