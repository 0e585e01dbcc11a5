"""ONNX Runtime for the CPU embedders: same vectors as
PyTorch, exported once, chosen by the runtime setting."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from engage.config import ImageSettings, TextSettings
from engage.embed import runtime
from engage.embed.image import EfficientNetEmbedder
from engage.embed.registry import make_image_embedder, make_text_embedder
from engage.embed.runtime import resolve_runtime
from engage.embed.text import MiniLMEmbedder
from engage.errors import EmbedderError

CAPTIONS = [
    "",
    "Sunday sourdough",
    "Fresh coffee on the balcony before the market #coffee #sunday #slowliving",
    "¡Qué rico! 🍞🔥 @anna.bakes",
    "bread " * 300,  # over the 128-token window: truncated alike by both runtimes
]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


def test_auto_runtime_is_onnxruntime_on_the_cpu_and_torch_on_cuda():
    assert resolve_runtime("auto", "cpu") == "onnxruntime"
    assert resolve_runtime("auto", "cuda") == "torch"
    assert resolve_runtime("torch", "cpu") == "torch"


def test_onnxruntime_on_cuda_or_an_unknown_runtime_is_an_error():
    with pytest.raises(EmbedderError, match="only used on the CPU"):
        resolve_runtime("onnxruntime", "cuda")
    with pytest.raises(EmbedderError, match="runtime 'tvm' is unknown"):
        resolve_runtime("tvm", "cpu")


def test_efficientnet_on_onnxruntime_gives_the_torch_vectors(onnx_dir):
    photos = [Image.fromarray(getattr(skimage.data,
                                      name)()).convert("RGB") for name in ("chelsea", "coffee", "rocket")]
    reference = EfficientNetEmbedder(device="cpu", runtime="torch", batch_size=2).embed(photos)
    exported = EfficientNetEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=onnx_dir, batch_size=2)
    vectors = exported.embed(photos)  # batches of 2 and 1: the batch axis is dynamic
    assert vectors.shape == (3, 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert _cosines(reference, vectors).min() >= 0.9999
    assert [p.name for p in onnx_dir.glob("efficientnet-lite0-*.onnx")]


def test_minilm_on_onnxruntime_gives_the_torch_vectors_with_padding_and_truncation(onnx_dir):
    reference = MiniLMEmbedder(device="cpu", runtime="torch").embed(CAPTIONS)
    exported = MiniLMEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=onnx_dir, batch_size=2)
    vectors = exported.embed(CAPTIONS)  # batches mix lengths, so padded positions must not count
    assert vectors.shape == (5, 384)
    assert _cosines(reference, vectors).min() >= 0.9999
    one_at_a_time = np.concatenate([exported.embed([c]) for c in CAPTIONS])
    assert np.allclose(one_at_a_time, vectors, atol=1e-5)


def test_minilm_batches_captions_by_word_pieces_padded_to_their_longest(onnx_dir):
    embedder = MiniLMEmbedder(device="cpu", runtime="onnxruntime", onnx_dir=onnx_dir, batch_size=2)
    # Characters and word pieces disagree: 28 characters in 9 pieces, 15 characters in 16 pieces.
    captions = ["the cat sat on the mat today", "#xqzj#vvkq#zzpt", "qxzvjk", "a b c d e f g h", "hi"]
    session = embedder._onnx_session(embedder._load())
    widths: list[tuple[int, list[int]]] = []

    class Recording:
        def run(self, names, inputs):
            assert set(inputs) == set(embedder._ONNX_INPUTS)
            widths.append((inputs["input_ids"].shape[1], inputs["attention_mask"].sum(axis=1).tolist()))
            return session.run(names, inputs)

    embedder._session = Recording()
    vectors = embedder.embed(captions)
    pieces = [len(ids) for ids in embedder._load().tokenizer(captions)["input_ids"]]
    ranked = sorted(pieces, reverse=True)
    # Longest first, two at a time, each batch exactly as wide as its longest caption.
    assert [lengths for _, lengths in widths] == [ranked[0:2], ranked[2:4], ranked[4:]]
    assert all(width == max(lengths) for width, lengths in widths)
    embedder._session = session
    alone = np.concatenate([embedder.embed([c]) for c in captions])
    np.testing.assert_allclose(vectors, alone, atol=1e-5)


def test_an_export_is_written_once_and_reused(onnx_dir, monkeypatch):
    EfficientNetEmbedder(device="cpu", onnx_dir=onnx_dir).encode_pixels(torch.zeros(1, 3, 224, 224))
    files = sorted(onnx_dir.glob("efficientnet-lite0-*.onnx"))
    assert len(files) == 1

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the file exists")

    monkeypatch.setattr(runtime, "_export", no_export)
    vector = EfficientNetEmbedder(device="cpu", onnx_dir=onnx_dir).encode_pixels(torch.zeros(1, 3, 224, 224))
    assert vector.shape == (1, 1280)
    assert sorted(onnx_dir.glob("efficientnet-lite0-*.onnx")) == files


def test_a_damaged_export_is_exported_again(tmp_path, caplog):
    pixels = torch.zeros(1, 3, 224, 224)
    expected = EfficientNetEmbedder(device="cpu", onnx_dir=tmp_path).encode_pixels(pixels)
    [path] = tmp_path.glob("efficientnet-lite0-*.onnx")
    path.write_bytes(b"not an onnx model")
    with caplog.at_level(logging.WARNING, logger="engage.embed.runtime"):
        again = EfficientNetEmbedder(device="cpu", onnx_dir=tmp_path).encode_pixels(pixels)
    # its HMAC fails
    assert "is not the one engage exported" in caplog.text and "exporting it again" in caplog.text
    assert torch.allclose(again, expected, atol=1e-6)
    assert path.read_bytes()[:4] != b"not "


def test_an_unwritable_directory_still_gives_a_session(tmp_path, caplog):
    blocker = tmp_path / "a file"
    blocker.write_text("a file where the directory should be")
    with caplog.at_level(logging.WARNING, logger="engage.embed.runtime"):
        vector = EfficientNetEmbedder(device="cpu",
                                      onnx_dir=blocker / "onnx").encode_pixels(torch.zeros(1, 3, 224, 224))
    assert vector.shape == (1, 1280)
    assert "using it from memory" in caplog.text


def test_factories_pass_the_runtime_setting_on(onnx_dir):
    image = make_image_embedder(ImageSettings(embedder="efficientnet", device="cpu", runtime="torch"),
                                onnx_dir=onnx_dir)
    assert image.runtime == "torch"
    text = make_text_embedder(TextSettings(embedder="minilm", runtime="onnxruntime"), onnx_dir=onnx_dir)
    assert text.runtime == "onnxruntime" and text.onnx_dir == onnx_dir
