"""Vectors of the posts sent for scoring (a draft and its account's history): each photo and caption once.

    vectors = DraftVectors(pipeline, cache_items=8192)
    posts = vectors.embed([(photo_bytes, "caption"), (None, "another caption")])   # -> PostVectors

    pending = vectors.prepare(posts)          # in the request's thread: decode, measure, preprocess
    vectors.finish([pending, other_pending])  # once for many requests: one forward pass per model

A photo is decoded, measured (`image_quality`) and preprocessed by `prepare`; its pixels and the captions go
to the embedders in `finish`, which a server runs once for the drafts of concurrent requests (the dynamic
batcher of engage/scoring/scorer.py). A bounded in-memory LRU of vectors keyed by the SHA-256 of the photo's
bytes (image vector and quality measures) and of the caption's text (caption vector) means an account that
sends the same history with every draft has it embedded once (`cache_items` = 0 turns it off).

The vectors are those `FeaturePipeline.embed` computes for a post at training time (same decoder and photo
decoding, same quality measures, same embedders), only without the disk cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from cachetools import LRUCache

from engage.embed.cache import text_sha256
from engage.embed.decoding import MAX_PIXELS, decode_photo
from engage.errors import DataError
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


@dataclass
class PendingVectors:
    """Posts made ready for the embedders (photos decoded, measured and preprocessed; cache looked up):
    what `DraftVectors.finish` still has to compute, and where each result goes."""

    n: int
    # ("image", pixels) / ("caption", text), deduplicated
    work: list[tuple[str, Any]] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # the cache key of each work item, in order
    measured: dict[str, np.ndarray] = field(default_factory=dict)  # photo key -> its quality measures
    wanted: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # key -> the rows it fills
    # held: another thread may evict the cache entry
    found: dict[tuple[str, str], Any] = field(default_factory=dict)


class DraftVectors:
    """Image, caption and quality vectors of posts given as bytes and text, for one fitted pipeline.

    Two steps, so that a server can run the first in each request's thread and the second once for many
    requests (engage/scoring/scorer.py batches whole drafts): `prepare` decodes, measures and preprocesses the
    photos (what no batch can share), `finish` runs one forward pass per model over the pixels and captions
    of every prepared request. `embed` is both, for one list of posts.
    """

    def __init__(self, pipeline: Any, *, cache_items: int = 0, max_pixels: int | None = None):
        self.pipeline = pipeline
        self.cache = VectorCache(cache_items)
        self.max_pixels = max_pixels or MAX_PIXELS

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
            decode_photo(image, decoding=self.pipeline.photo_decoding, max_pixels=self.max_pixels, name=name)

    def embed(self, posts: Sequence[PostInput]) -> Any:
        """`PostVectors` of `posts` in order (NaN image and quality rows for a post without a photo).

        Raises `PostImageError` with the position of the first photo that cannot be decoded.
        """
        return self.finish([self.prepare(posts)])[0]

    def prepare(self, posts: Sequence[PostInput]) -> PendingVectors:
        """Everything but the forward passes: cache look-ups, and each new photo decoded, measured
        (`image_quality`) and preprocessed. Raises `PostImageError`
        for the first photo that cannot be decoded."""
        pending = PendingVectors(len(posts))
        for index, (photo, text) in enumerate(posts):
            keys = [("caption", text_sha256(text))]
            if photo is not None:
                keys.append(("image", hashlib.sha256(photo).hexdigest()))
            for key in keys:
                if key in pending.wanted:
                    pending.wanted[key].append(index)
                    continue
                pending.wanted[key] = [index]
                cached = self.cache.get(key)
                if cached is not None:
                    pending.found[key] = cached
                    continue
                if key[0] == "caption":
                    pending.work.append(("caption", text))
                else:
                    decoding = self.pipeline.photo_decoding  # as the model was trained with
                    try:
                        picture, size = decode_photo(photo, decoding=decoding,  # type: ignore[arg-type]
                                                     max_pixels=self.max_pixels, name="image")
                    except DataError as e:
                        raise PostImageError(index, e) from e
                    measures = image_quality(picture, self.pipeline.quality_version, size=size)
                    pending.measured[key[1]] = np.array([measures[c] for c in QUALITY_COLUMNS],
                                                        dtype=np.float32)
                    pending.work.append(("image", self.pipeline.image_embedder.preprocess(picture)))
                pending.keys.append(key)
        return pending

    def finish(self, pending: Sequence[PendingVectors]) -> list[Any]:
        """The `PostVectors` of each prepared list of posts, all their new photos and captions embedded in one
        forward pass per model."""
        from engage.features.vectors import PostVectors

        work = [item for p in pending for item in p.work]
        results = iter(self._forward(work) if work else [])
        out = []
        for p in pending:
            for key in p.keys:
                vector = next(results)
                p.found[key] = (vector, p.measured[key[1]]) if key[0] == "image" else vector
                self.cache.put(key, p.found[key])
            image = np.full((p.n, self.pipeline.image_embedder.dim), np.nan, dtype=np.float32)
            quality = np.full((p.n, len(QUALITY_COLUMNS)), np.nan, dtype=np.float32)
            caption = np.empty((p.n, self.pipeline.text_embedder.dim), dtype=np.float32)
            for key, rows in p.wanted.items():
                if key[0] == "image":
                    image[rows], quality[rows] = p.found[key]
                else:
                    caption[rows] = p.found[key]
            out.append(PostVectors(image, caption, quality))
        return out
