"""ONNX Runtime for the offline CPU embedders: exported from their PyTorch weights at first use.

On this project's CPUs ONNX Runtime runs EfficientNet-Lite0 2.6x (batch 16) to 14x (one photo) faster than
PyTorch, and MiniLM 2.9x faster on one caption and as fast on 16, with the same vectors (cosine 1.0000;
measured by `benchmarks/onnx_runtime.py`, figures in docs/performance.md). So `image.runtime` /
`text.runtime` = `auto` use it for those two models on the CPU, for training and serving alike; CLIP and
CUDA keep PyTorch (int8 models were measured too and refused: minimum cosine 0.40 and 0.92).

`onnx_session(module, inputs, ...)` exports `module` once to `<directory>/<name>-<key>.onnx`, where the key
hashes the weights, torch's version and `EXPORT_VERSION`: a changed model gets a new file, never a stale
one. The file is written atomically (a temporary file renamed into place), so concurrent first uses are
safe; a directory that cannot be written only costs the export again next time (the session is built from
the bytes). Nothing is downloaded: the export runs the weights already installed.

The path is predictable and the graph decides every embedding, so an export is used only when
`NAME.onnx.sig` holds the HMAC of its bytes under this machine's model key (engage/signing.py): a planted or
edited file is logged and replaced by a fresh export, and the session is built from the bytes verified.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from engage.bounded import read_bytes_bounded
from engage.errors import DataError, EmbedderError
from engage.files import write_atomically
from engage.signing import model_key, sign, verify

log = logging.getLogger(__name__)

#: Largest ONNX export read back (EfficientNet-Lite0 is ~14 MB, MiniLM ~90 MB).
MAX_ONNX_BYTES = 512 * 1024 * 1024
#: Bump when the exported graphs change (inputs, outputs, pooling), so old files are not reused.
EXPORT_VERSION = 1
#: Where exports go when the caller names no directory (the pipeline passes `features.cache_dir`/onnx).
DEFAULT_DIR_ENV = "ENGAGE_ONNX_DIR"

Runtime = Literal["torch", "onnxruntime"]


def default_directory() -> Path:
    return Path(os.environ.get(DEFAULT_DIR_ENV) or Path.home() / ".cache" / "engage" / "onnx")


def resolve_runtime(setting: str, device: torch.device | str) -> Runtime:
    """`auto` -> ONNX Runtime on the CPU, PyTorch on CUDA; `torch` / `onnxruntime` as asked."""
    device_type = torch.device(device).type
    if setting == "torch":
        return "torch"
    if setting == "onnxruntime":
        if device_type != "cpu":
            raise EmbedderError(
                f"runtime 'onnxruntime' is only used on the CPU, but the embedder runs on {device_type}; "
                "set the runtime to auto or torch, or the device to cpu"
            )
        return "onnxruntime"
    if setting == "auto":
        return "onnxruntime" if device_type == "cpu" else "torch"
    raise EmbedderError(f"runtime {setting!r} is unknown; use auto, torch or onnxruntime")


def export_key(weights_id: str) -> str:
    text = f"{weights_id}|torch {torch.__version__}|export v{EXPORT_VERSION}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class PooledFeatures(torch.nn.Module):
    """EfficientNet's last convolution averaged over the image: the image vector, as one exported graph."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model: Any = model  # an nn.Module whose methods (extract_features) are looked up by name

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(pixels).mean(dim=(2, 3))


class MeanPooledBert(torch.nn.Module):
    """BERT's token vectors averaged over the real (unpadded) tokens: sentence-transformers' mean pooling."""

    def __init__(self, bert: torch.nn.Module):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
        return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _export(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], input_names: Sequence[str],
            output_names: Sequence[str], dynamic_axes: dict[str, dict[int, str]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter (dynamo=False) exports these two models in 2-3 s against ~15 s for the
        # torch.export one, and needs no onnx/onnxscript; torch is pinned, so its deprecation is no risk yet.
        warnings.simplefilter("ignore")
        # A file object is a documented target of torch.onnx.export;
        # its stubs say path only (hence the ignore).
        torch.onnx.export(module.eval(), inputs, buffer, input_names=list(input_names),  # type: ignore[arg-type]
                          output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=17,
                          dynamo=False)
    return buffer.getvalue()


def _session(model: bytes | str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle threads sleep instead of spinning: an embedding call is one long region, not thousands of short
    # ones (unlike LightGBM's fit, engage/__init__.py), and on a shared 2-core machine spinning threads slow
    # down everything else.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def onnx_session(
    module: torch.nn.Module,
    inputs: tuple[torch.Tensor, ...],
    *,
    name: str,
    weights_id: str,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
    directory: str | os.PathLike | None = None,
) -> Any:
    """An `onnxruntime.InferenceSession` for `module`, exported to `directory` on first use.

    `inputs` are example inputs for the trace (shapes along `dynamic_axes` may differ later);
    `weights_id` names the weights (e.g. their file's SHA-256), so that other weights get another file.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise EmbedderError(
            "the onnxruntime runtime needs `pip install onnxruntime` (or set the runtime to torch)") from e
    threads = max(1, torch.get_num_threads())
    folder = Path(directory) if directory is not None else default_directory()
    path = folder / f"{name}-{export_key(weights_id)}.onnx"
    key = model_key(create=True)
    assert key is not None  # create=True makes one when there is none
    if path.exists() or path.is_symlink():
        data = _verified(path, folder, key)
        if data is not None:
            try:
                return _session(data, threads)  # the bytes verified are the bytes used
            except Exception as e:  # a damaged file: export again over it
                log.warning("ONNX model %s cannot be loaded (%s); exporting it again", path, e)
    log.info("exporting %s to ONNX at %s (once)", name, path)
    data = _export(module, inputs, input_names, output_names, dynamic_axes)
    try:
        write_atomically(path, data)
        write_atomically(signature_path(path), sign(data, key).encode("ascii"))  # pins these bytes
    except OSError as e:
        log.warning(
            "cannot write the ONNX export to %s (%s); using it from memory, it will be exported again "
                    "next time", path, e)
    return _session(data, threads)


def signature_path(path: Path) -> Path:
    """Where the HMAC of an export is kept (`NAME.onnx.sig`): it pins the bytes engage exported."""
    return path.with_name(path.name + ".sig")


def _verified(path: Path, folder: Path, key: bytes) -> bytes | None:
    """The export's bytes if its signature proves engage exported them under this machine's model key, else
    None (logged: a planted or edited graph is replaced by a fresh export from the installed weights, never
    used)."""
    try:
        data = read_bytes_bounded(path, root=folder, max_bytes=MAX_ONNX_BYTES, max_decoded=MAX_ONNX_BYTES)
        signature = read_bytes_bounded(signature_path(path), root=folder,
                                       max_bytes=1024).decode("ascii", "replace")
    except DataError as e:
        log.warning("ONNX model %s is not used (%s); exporting it again from the installed weights", path,
                    e.message)
        return None
    if not verify(data, signature.strip(), key):
        log.warning(
            "ONNX model %s is not the one engage exported (its signature does not match this machine's model "
            "key: planted, edited, or exported under another key); exporting it again from the installed "
                    "weights", path)
        return None
    return data
