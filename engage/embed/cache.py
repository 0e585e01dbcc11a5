"""On-disk cache of feature vectors, so that no image is embedded or measured twice.

Vectors are stored per namespace (an embedder id such as `open_clip:ViT-B-32:laion2b_s34b_b79k`, or
`quality-v1`) under `<root>/<sanitised namespace>/`, keyed by a string: for images the SHA-256 of the file's
bytes (`engage.files.file_sha256`), for captions the SHA-256 of the text (`text_sha256`). Changing the
embedder changes the namespace, so vectors of different models never mix.

Storage is a set of append-only shard files `shard-*.npz` (arrays `keys` and `vectors`). Each shard is
written through `engage.files.staged_write` (a hidden temporary sibling, fsynced, renamed with `os.replace`),
which is atomic: a run killed at any moment leaves complete shards plus at most a stray `.tmp` file, which is
never read. A shard that cannot be read or does not hold what a shard must is skipped with a warning naming
it; its keys are simply computed again. `cached_vectors` writes a shard every `chunk_size` new rows, so a long
extraction that is killed resumes where it stopped.

The cache is derived data: deleting the directory is always safe. A `FeatureCache` object indexes its
shards' keys (16 bytes a vector) and reads vectors only when asked for them, so a namespace of a million
vectors costs 16 MB of index, not the gigabyte its vectors take on disk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from engage.files import staged_write

logger = logging.getLogger(__name__)

SHARD_GLOB = "shard-*.npz"
#: `cached_vectors` doubles its chunk (up to `max_chunk_size`) after a chunk computed faster than this.
FAST_CHUNK_SECONDS = 1.0


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


def key_hashes(keys: Sequence[str] | np.ndarray) -> np.ndarray:
    """uint64 hashes of `keys` (pandas' fixed-key SipHash,
    the same in every process): the index's sort key."""
    return pd.util.hash_array(np.asarray(keys, dtype=object))


class FeatureCache:
    """Vectors keyed by string within one namespace, stored as atomic shard files under `root`.

    Memory is bounded by design: the object holds an index of its shards' keys (a 64-bit hash, a shard
    number and a row per vector: 16 bytes each, 16 MB for a million), never their vectors. `get` reads
    the shards that hold the keys asked for, one at a time, checks each hit against the full key stored
    in the shard (so a hash collision is a miss, computed again, never a wrong vector) and copies the
    rows out; `put` writes a shard and adds its keys to the index.
    """

    def __init__(self, root: str | os.PathLike, namespace: str):
        self.root = Path(root)
        self.namespace = namespace
        self.directory = self.root / sanitise_namespace(namespace)
        self.dim: int | None = None  # known after the first shard is read or written
        self._shards: list[Path] = []  # shard number -> file
        self._pending: list[tuple[np.ndarray, int]] = []  # (key hashes, shard number) not merged yet
        self._hashes = np.zeros(0, dtype=np.uint64)  # sorted
        self._where = np.zeros(0, dtype=np.int64)  # shard number << 32 | row, aligned with _hashes
        self._seen_shards: set[str] = set()  # read, or found unreadable and warned about

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r}, {self.namespace!r})"

    def __len__(self) -> int:
        self._refresh()
        self._merge()
        return len(self._hashes)

    def _warn_unreadable(self, shard: Path, e: Exception) -> None:
        message = (
            f"feature cache shard {shard} cannot be read ({type(e).__name__}: {e}); ignoring it, "
            "its vectors will be computed again (delete the file to silence this warning)"
        )
        logger.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _refresh(self) -> None:
        """Index shards this object has not seen yet (also those other processes wrote since): their keys
        and shapes only; the vectors stay on disk."""
        if not self.directory.is_dir():
            return
        for shard in sorted(self.directory.glob(SHARD_GLOB)):
            if shard.name in self._seen_shards:
                continue
            self._seen_shards.add(shard.name)
            try:
                keys, dim = self._read_keys(shard)
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
                self._warn_unreadable(shard, e)
                continue
            if self.dim is None:
                self.dim = dim
            self._add(shard, keys)

    def _add(self, shard: Path, keys: np.ndarray) -> None:
        self._shards.append(shard)
        self._pending.append((key_hashes(keys), len(self._shards) - 1))

    def _merge(self) -> None:
        """Fold the shards indexed since the last merge into
        the sorted index (once per `get`, not per `put`)."""
        if not self._pending:
            return
        hashes = [self._hashes, *(h for h, _ in self._pending)]
        where = [self._where,
                 *((np.int64(n) << 32) | np.arange(len(h), dtype=np.int64) for h, n in self._pending)]
        self._pending = []
        hashes_all, where_all = np.concatenate(hashes), np.concatenate(where)
        order = np.argsort(hashes_all, kind="stable")
        self._hashes, self._where = hashes_all[order], where_all[order]

    def _read_keys(self, shard: Path) -> tuple[np.ndarray, int]:
        """A shard's keys and vector width, checked (the zip
        member of the vectors is only parsed, not read)."""
        with np.load(shard, allow_pickle=False) as data:
            keys = data["keys"]
            with data.zip.open("vectors.npy") as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        if keys.ndim != 1 or keys.dtype.kind != "U":
            raise ValueError(f"'keys' must be a 1-d string array, got {keys.dtype} {keys.shape}")
        if len(shape) != 2 or shape[0] != len(keys) or dtype.kind != "f":
            raise ValueError(f"'vectors' must be a float ({len(keys)}, dim) array, got {dtype} {shape}")
        if self.dim is not None and shape[1] != self.dim:
            raise ValueError(f"vectors have {shape[1]} columns, other shards have {self.dim}")
        return keys, int(shape[1])

    def get(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`(vectors, found)`: float32 `(n, dim)` with NaN rows where `found` is False.

        Before anything was stored in this namespace the dimension is unknown and `vectors` is `(n, 0)`.
        Only the shards holding some of `keys` are read, one at a time.
        """
        self._refresh()
        self._merge()
        dim = self.dim or 0
        vectors = np.full((len(keys), dim), np.nan, dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        if not len(keys) or not len(self._hashes):
            return vectors, found
        wanted = key_hashes(keys)
        at = np.minimum(np.searchsorted(self._hashes, wanted), len(self._hashes) - 1)
        hit = np.flatnonzero(self._hashes[at] == wanted)
        if not len(hit):  # none stored yet (a new data set over a filled cache folder)
            return vectors, found
        where = self._where[at[hit]]
        shard_of, row_of = where >> 32, where & 0xFFFFFFFF
        order = np.argsort(shard_of, kind="stable")
        bounds = np.flatnonzero(np.r_[True, shard_of[order][1:] != shard_of[order][:-1], True])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            chosen = order[a:b]
            shard = self._shards[int(shard_of[chosen[0]])]
            try:
                with np.load(shard, allow_pickle=False) as data:
                    stored_keys, stored = data["keys"], data["vectors"]
                if stored.shape != (len(stored_keys), dim):
                    raise ValueError(f"'vectors' changed shape to {stored.shape}")
            except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
                self._warn_unreadable(shard, e)
                continue
            positions, rows = hit[chosen], row_of[chosen]
            # a hash collision is a miss
            same = stored_keys[rows] == np.asarray(keys, dtype=object)[positions]
            vectors[positions[same]] = stored[rows[same]]
            found[positions[same]] = True
        return vectors, found

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store one shard holding `vectors[i]` under `keys[i]` (atomically: all rows or none)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(keys):
            raise ValueError(
                "put() needs a (len(keys), dim) array: got "
                f"{len(keys)} keys and vectors of shape {vectors.shape}"
            )
        if len(keys) == 0:
            return
        if self.dim is None:  # the width other processes may have stored; once known, no need to look again
            self._refresh()
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise ValueError(
                f"cache namespace {self.namespace!r} holds {self.dim}-d vectors, got {vectors.shape[1]}-d; "
                "a different embedder must use its own namespace (its id)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex}.npz"
        final = self.directory / name
        stored_keys = np.asarray(list(keys), dtype=str)
        # clean=False: a namespace holds thousands of shards, and readers only ever list shard-*.npz.
        with staged_write(final, directory=False, clean=False) as staged:
            with open(staged.path, "wb") as f:
                np.savez(f, keys=stored_keys, vectors=vectors)
        self._seen_shards.add(name)
        self.dim = vectors.shape[1]
        self._add(final, stored_keys)


def cached_vectors(
    keys: Sequence[str],
    compute: Callable[[list[int]], np.ndarray],
    cache: FeatureCache,
    *,
    chunk_size: int = 256,
    max_chunk_size: int | None = None,
    progress: bool = False,
    desc: str | None = None,
    order: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """Vectors for `keys`, computing only those the cache lacks.

    `compute(indices)` gets positions into `keys` (one per distinct missing key, in chunks of `chunk_size`)
    and returns their vectors `(len(indices), dim)`; each chunk is stored before the next is computed, so a
    killed run resumes. With `max_chunk_size`, a chunk computed in under `FAST_CHUNK_SECONDS` doubles the
    next one, up to that size (a fast embedder then writes a few large shards, not thousands of small
    ones; a killed run still loses about a second of work). Rows that come back all-NaN (an image that
    could not be decoded) are returned but not stored, so the failure is reported again next time instead
    of being remembered silently. `order` (one number per key) computes the missing keys in its ascending
    order instead of the keys' (captions longest first: each chunk then holds captions of similar length,
    which a transformer batches with little padding). Nothing here holds a Python object per key: a million
    keys cost their arrays.
    """
    cached, found = cache.get(keys)
    missing = np.flatnonzero(~found)
    if not len(missing):
        return cached
    # One compute per distinct missing key: `codes` numbers them in order of first appearance.
    codes, _ = pd.factorize(np.asarray(keys, dtype=object)[missing])
    first = missing[np.flatnonzero(np.r_[True, np.diff(np.maximum.accumulate(codes)) > 0])]
    todo = first if order is None else first[np.argsort(np.asarray(order)[first], kind="stable")]
    out = cached
    bar = tqdm(total=len(first), desc=desc or f"computing {cache.namespace}", unit="item",
               disable=not progress)
    start, size = 0, chunk_size
    while start < len(todo):
        indices = todo[start:start + size]
        began = time.perf_counter()
        vectors = np.asarray(compute(indices.tolist()), dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(indices):
            raise ValueError(
                f"compute() returned shape {vectors.shape} for "
                f"{len(indices)} rows; it must return (rows, dim)"
            )
        if out.shape[1] != vectors.shape[1]:
            if cached.shape[1] not in (0, vectors.shape[1]):
                raise ValueError(f"compute() returned {vectors.shape[1]}-d vectors but the cache holds "
                                 f"{cached.shape[1]}-d ones")
            out = np.full((len(keys), vectors.shape[1]), np.nan, dtype=np.float32)
        usable = ~np.isnan(vectors).all(axis=1)
        cache.put([keys[i] for i in indices[usable]], vectors[usable])
        out[indices] = vectors
        bar.update(len(indices))
        start += len(indices)
        if max_chunk_size and time.perf_counter() - began < FAST_CHUNK_SECONDS:
            size = min(size * 2, max_chunk_size)
    bar.close()
    out[missing] = out[first[codes]]  # repeated keys take their first occurrence's vector
    return out
