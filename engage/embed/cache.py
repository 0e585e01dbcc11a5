"""On-disk cache of feature vectors, so that no image is embedded or measured twice.

Vectors are stored per namespace (an embedder id such as `open_clip:ViT-B-32:laion2b_s34b_b79k`, or
`quality-v1`) under `<root>/<sanitised namespace>/`, keyed by a string: for images the SHA-256 of the file's
bytes (`engage.files.file_sha256`), for captions the SHA-256 of the text (`text_sha256`). Changing the embedder changes
the namespace, so vectors of different models never mix.

Storage is a set of append-only shard files `shard-*.npz` (arrays `keys` and `vectors`). Each shard is
written to a hidden temporary file, flushed and fsynced, then renamed into place with `os.replace`, which is
atomic: a run killed at any moment leaves complete shards plus at most a stray `.tmp` file, which is never
read. A shard that cannot be read or does not hold what a shard must is skipped with a warning naming it;
its keys are simply computed again. `cached_vectors` writes a shard every `chunk_size` new rows, so a long
extraction that is killed resumes where it stopped.

The cache is derived data: deleting the directory is always safe. All shards of a namespace are held in
memory once read (fine for the tens of thousands of posts engage works with).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

SHARD_GLOB = "shard-*.npz"


def text_sha256(text: str) -> str:
    """Hex SHA-256 of a text's UTF-8 bytes: the cache key of a caption."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sanitise_namespace(namespace: str) -> str:
    """A directory name for `namespace`: unsafe characters become `_`, plus a short hash so that two
    namespaces that sanitise alike (`a:b` and `a_b`) never share a directory."""
    if not namespace:
        raise ValueError("cache namespace must not be empty; use the embedder id or e.g. 'quality-v1'")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", namespace).strip("._")[:100] or "ns"
    return f"{safe}-{hashlib.sha256(namespace.encode('utf-8')).hexdigest()[:8]}"


class FeatureCache:
    """Vectors keyed by string within one namespace, stored as atomic shard files under `root`."""

    def __init__(self, root: str | os.PathLike, namespace: str):
        self.root = Path(root)
        self.namespace = namespace
        self.directory = self.root / sanitise_namespace(namespace)
        self.dim: int | None = None  # known after the first shard is read or written
        self._vectors: dict[str, np.ndarray] = {}
        self._seen_shards: set[str] = set()  # read, or found unreadable and warned about

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r}, {self.namespace!r})"

    def __len__(self) -> int:
        self._refresh()
        return len(self._vectors)

    def _refresh(self) -> None:
        """Read shards this object has not seen yet (also those other processes wrote since)."""
        if not self.directory.is_dir():
            return
        for shard in sorted(self.directory.glob(SHARD_GLOB)):
            if shard.name in self._seen_shards:
                continue
            self._seen_shards.add(shard.name)
            try:
                keys, vectors = self._read_shard(shard)
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
                message = (
                    f"feature cache shard {shard} cannot be read ({type(e).__name__}: {e}); ignoring it, "
                    "its vectors will be computed again (delete the file to silence this warning)"
                )
                logger.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=3)
                continue
            if self.dim is None:
                self.dim = vectors.shape[1]
            for key, vector in zip(keys.tolist(), vectors, strict=True):
                self._vectors[key] = vector

    def _read_shard(self, shard: Path) -> tuple[np.ndarray, np.ndarray]:
        with np.load(shard, allow_pickle=False) as data:
            keys, vectors = data["keys"], data["vectors"]
        if keys.ndim != 1 or keys.dtype.kind != "U":
            raise ValueError(f"'keys' must be a 1-d string array, got {keys.dtype} {keys.shape}")
        if vectors.ndim != 2 or len(vectors) != len(keys) or vectors.dtype.kind != "f":
            raise ValueError(f"'vectors' must be a float ({len(keys)}, dim) array, got {vectors.dtype} {vectors.shape}")
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise ValueError(f"vectors have {vectors.shape[1]} columns, other shards have {self.dim}")
        return keys, vectors

    def get(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`(vectors, found)`: float32 `(n, dim)` with NaN rows where `found` is False.

        Before anything was stored in this namespace the dimension is unknown and `vectors` is `(n, 0)`.
        """
        self._refresh()
        dim = self.dim or 0
        vectors = np.full((len(keys), dim), np.nan, dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for i, key in enumerate(keys):
            vector = self._vectors.get(key)
            if vector is not None:
                vectors[i] = vector
                found[i] = True
        return vectors, found

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store one shard holding `vectors[i]` under `keys[i]` (atomically: all rows or none)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(
                f"put() needs a (len(keys), dim) array: got {len(keys)} keys and vectors of shape {vectors.shape}"
            )
        if len(keys) == 0:
            return
        self._refresh()
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise ValueError(
                f"cache namespace {self.namespace!r} holds {self.dim}-d vectors, got {vectors.shape[1]}-d; "
                "a different embedder must use its own namespace (its id)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex}.npz"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        try:
            with open(temporary, "wb") as f:
                np.savez(f, keys=np.asarray(list(keys), dtype=str), vectors=vectors)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, final)
        finally:
            if temporary.exists():
                temporary.unlink()
        _fsync_directory(self.directory)
        self._seen_shards.add(name)
        self.dim = vectors.shape[1]
        for key, vector in zip(keys, vectors, strict=True):
            self._vectors[key] = vector


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cached_vectors(
    keys: Sequence[str],
    compute: Callable[[list[int]], np.ndarray],
    cache: FeatureCache,
    *,
    chunk_size: int = 256,
    progress: bool = False,
    desc: str | None = None,
) -> np.ndarray:
    """Vectors for `keys`, computing only those the cache lacks.

    `compute(indices)` gets positions into `keys` (one per distinct missing key, in chunks of `chunk_size`)
    and returns their vectors `(len(indices), dim)`; each chunk is stored before the next is computed, so a
    killed run resumes. Rows that come back all-NaN (an image that could not be decoded) are returned but not
    stored, so the failure is reported again next time instead of being remembered silently.
    """
    cached, found = cache.get(keys)
    first_index: dict[str, int] = {}
    for i, key in enumerate(keys):
        if not found[i]:
            first_index.setdefault(key, i)
    missing = list(first_index.values())
    if not missing:
        return cached
    computed: dict[str, np.ndarray] = {}
    bar = tqdm(total=len(missing), desc=desc or f"computing {cache.namespace}", unit="item", disable=not progress)
    for start in range(0, len(missing), chunk_size):
        indices = missing[start : start + chunk_size]
        vectors = np.asarray(compute(indices), dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(indices):
            raise ValueError(
                f"compute() returned shape {vectors.shape} for {len(indices)} rows; it must return (rows, dim)"
            )
        chunk_keys = [keys[i] for i in indices]
        usable = ~np.isnan(vectors).all(axis=1)
        cache.put([k for k, ok in zip(chunk_keys, usable, strict=True) if ok], vectors[usable])
        computed.update(zip(chunk_keys, vectors, strict=True))
        bar.update(len(indices))
    bar.close()
    dim = next(iter(computed.values())).shape[0]
    if cached.shape[1] not in (0, dim):
        raise ValueError(f"compute() returned {dim}-d vectors but the cache holds {cached.shape[1]}-d ones")
    out = np.full((len(keys), dim), np.nan, dtype=np.float32)
    if found.any():
        out[found] = cached[found]
    for i, key in enumerate(keys):
        if not found[i]:
            out[i] = computed[key]
    return out
