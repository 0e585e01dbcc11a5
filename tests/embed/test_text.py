"""Text embedders and image-caption similarity (engage/embed/text.py), and how the registry picks one."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from engage.config import TextSettings
from engage.embed.registry import make_text_embedder
from engage.embed.text import ClipTextEmbedder, MiniLMEmbedder, image_caption_similarity
from engage.errors import EmbedderError

# --- embedders -------------------------------------------------------------------------------------


class FakeClip:
    """Stands in for an open_clip image embedder: a deterministic text tower of dimension 4."""

    id = "open_clip:fake"
    text_id = "open_clip:fake:text"
    dim = 4

    def embed_text(self, texts):
        return np.array([[len(t) + 1.0, 1.0, 0.0, 2.0] for t in texts])


class NoTextTower:
    id = "efficientnet:lite0"
    dim = 1280


def test_clip_text_embedder_wraps_the_text_tower_and_normalises():
    embedder = ClipTextEmbedder(FakeClip())
    vectors = embedder.embed(["ab", ""])
    assert embedder.id == "open_clip:fake:text" and embedder.dim == 4
    assert vectors.dtype == np.float32 and vectors.shape == (2, 4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(vectors[1], np.array([1, 1, 0, 2]) / np.sqrt(6), rtol=1e-6)


def test_make_text_embedder_picks_clip_or_minilm():
    assert isinstance(make_text_embedder(TextSettings(embedder="auto"), FakeClip()), ClipTextEmbedder)
    assert isinstance(make_text_embedder(TextSettings(embedder="auto"), NoTextTower()), MiniLMEmbedder)
    assert isinstance(make_text_embedder(TextSettings(embedder="minilm"), FakeClip()), MiniLMEmbedder)
    assert isinstance(make_text_embedder(TextSettings(embedder="clip"), FakeClip()), ClipTextEmbedder)


def test_clip_text_embedder_without_a_text_tower_is_an_error():
    with pytest.raises(EmbedderError,
                       match=r"text.embedder=clip needs an image embedder with a text tower.*efficientnet"):
        make_text_embedder(TextSettings(embedder="clip"), NoTextTower())


def test_minilm_embeds_offline_with_dim_384_and_similar_sentences_closer(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the MiniLM embedder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    embedder = MiniLMEmbedder(device="cpu")
    vectors = embedder.embed([
        "A puppy playing on the beach",
        "A young dog runs along the seaside",
        "Quarterly tax filing deadline reminder",
        "",
    ])
    assert embedder.id == "minilm:all-MiniLM-L6-v2:128"
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.5 > unrelated
    assert np.isfinite(vectors[3]).all()  # the empty caption is a caption like any other
    # Batching does not change the vectors.
    np.testing.assert_allclose(MiniLMEmbedder(device="cpu",
                                              batch_size=1).embed(["A puppy playing on the beach"])[0],
                               vectors[0], atol=1e-5)


def test_image_caption_similarity_is_row_wise_cosine_with_nan_rows():
    image = np.array([[1.0, 0.0], [1.0, 1.0], [np.nan, 0.0], [0.0, 2.0]])
    caption = np.array([[2.0, 0.0], [1.0, 0.0], [1.0, 0.0], [np.nan, np.nan]])
    similarity = image_caption_similarity(image, caption)
    np.testing.assert_allclose(similarity[:2], [1.0, 1 / np.sqrt(2)])
    assert np.isnan(similarity[2:]).all()


def test_image_caption_similarity_refuses_different_dimensions():
    with pytest.raises(EmbedderError, match="same shape"):
        image_caption_similarity(np.zeros((2, 512)), np.zeros((2, 384)))
