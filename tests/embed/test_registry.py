"""The embedder registries (engage/embed/registry.py): names, errors, and a new embedder in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engage.config import ImageSettings, Settings, TextSettings
from engage.embed.decoding import open_image
from engage.embed.registry import (
    IMAGE_EMBEDDERS,
    TEXT_EMBEDDERS,
    Build,
    make_image_embedder,
    make_text_embedder,
)
from engage.errors import EmbedderError
from engage.features.pipeline import FeaturePipeline


def test_an_unknown_embedder_names_the_registered_ones():
    with pytest.raises(EmbedderError, match=r"image.embedder='resnet' "
                       r"is unknown; use auto or one of efficientnet, open_clip"):
        make_image_embedder(ImageSettings(embedder="resnet"))
    with pytest.raises(EmbedderError,
                       match=r"text.embedder='bert' is unknown; use auto or one of minilm, static, clip"):
        make_text_embedder(TextSettings(embedder="bert"))


# -- a new embedder: one module (here, the class and factory
# below) and one registry line ---------------------

class ColourGrid:
    """Mean colour of each cell of a 2 x 2 grid: a 12-dimensional, L2-normalised photo vector."""

    id = "colour_grid:2x2"
    dim = 12

    def embed_paths(self, paths: list[str], progress: bool = False) -> np.ndarray:
        return np.stack([self._vector(open_image(path, name=path)) for path in paths]).astype(np.float32)

    @staticmethod
    def _vector(picture: Image.Image) -> np.ndarray:
        pixels = np.asarray(picture.convert("RGB").resize((2, 2), Image.Resampling.BOX), dtype=np.float64)
        vector = pixels.reshape(-1) + 1.0
        return vector / np.linalg.norm(vector)


def colour_grid(settings: ImageSettings, build: Build) -> ColourGrid:
    return ColourGrid()


def test_a_new_image_embedder_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(IMAGE_EMBEDDERS, "colour_grid", colour_grid)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (40, 40), (255, 0, 0)).save(red)
    Image.new("RGB", (40, 40), (0, 0, 255)).save(blue)
    settings = Settings.model_validate({"image": {"embedder": "colour_grid"}, "text": {"embedder": "minilm"},
                                        "features": {"cache_dir": str(tmp_path / "cache")}})
    pipeline = FeaturePipeline.from_settings(settings)
    posts = pd.DataFrame({"image": [str(red), str(blue), None], "caption": ["red", "blue", "none"]})
    vectors = pipeline.embed(posts, progress=False)
    assert pipeline.image_embedder.id == "colour_grid:2x2" and vectors.image.shape == (3, 12)
    one = 1 / np.sqrt(4 * 256**2 + 8)  # (255 + 1) in one channel, 1 in the others, over four cells
    np.testing.assert_allclose(vectors.image[0], np.tile([256 * one, one, one], 4), rtol=1e-6)
    np.testing.assert_allclose(vectors.image[1], np.tile([one, one, 256 * one], 4), rtol=1e-6)
    assert np.isnan(vectors.image[2]).all()  # a post without a photo
    # The cache keeps the new embedder's vectors under its own id: a second pipeline computes nothing.
    monkeypatch.setitem(IMAGE_EMBEDDERS, "colour_grid", lambda s, b: pytest.fail("embedded again"))
    monkeypatch.setattr(ColourGrid, "embed_paths", lambda *a, **k: pytest.fail("embedded again"))
    again = FeaturePipeline.from_settings(settings)
    again._image_embedder = ColourGrid()
    np.testing.assert_array_equal(again.embed(posts, progress=False).image[:2], vectors.image[:2])


def test_a_new_text_embedder_is_one_registry_line(monkeypatch):
    class Letters:
        id, dim = "letters:26", 26

        def embed(self, texts):
            counts = np.array([[t.lower().count(chr(97 + k)) for k in range(26)] for t in texts],
                              dtype=np.float32) + 1
            return counts / np.linalg.norm(counts, axis=1, keepdims=True)

    monkeypatch.setitem(TEXT_EMBEDDERS, "letters", lambda settings, build: Letters())
    embedder = make_text_embedder(TextSettings(embedder="letters"))
    vectors = embedder.embed(["abc", "zzz"])
    assert embedder.id == "letters:26" and vectors.shape == (2, 26)
    assert vectors[0, 0] == pytest.approx(2 / np.sqrt(4 * 3 + 23))
