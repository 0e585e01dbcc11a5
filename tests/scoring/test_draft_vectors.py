"""Vectors of drafts sent for scoring: the training-time vectors, each photo and caption computed once."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from engage.config import Settings
from engage.features.pipeline import FeaturePipeline
from engage.scoring.draft_vectors import DraftVectors, PostImageError, VectorCache


def _jpeg(name: str, side: int = 300) -> bytes:
    out = io.BytesIO()
    Image.fromarray(getattr(skimage.data,
                            name)()).convert("RGB").resize((side, side)).save(out, format="JPEG")
    return out.getvalue()


PHOTOS = [_jpeg(name) for name in ("chelsea", "coffee", "rocket", "astronaut")]
CAPTIONS = ["Sunday sourdough #bread", "Coffee on the balcony", "Launch day!", ""]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> FeaturePipeline:
    settings = Settings()
    settings.image.embedder = "efficientnet"
    settings.image.device = "cpu"
    settings.text.embedder = "minilm"
    settings.features.cache_dir = str(tmp_path_factory.mktemp("cache"))
    return FeaturePipeline.from_settings(settings)


class Counting:
    """Counts the forward passes a DraftVectors makes."""

    def __init__(self, vectors: DraftVectors):
        self.calls: list[list[str]] = []
        forward = vectors._forward

        def counted(items):
            self.calls.append([kind for kind, _ in items])
            return forward(items)

        vectors._forward = counted


def test_vectors_equal_the_unbatched_draft_path(pipeline):
    vectors = DraftVectors(pipeline).embed(list(zip(PHOTOS[:2], CAPTIONS[:2],
                                                    strict=True)) + [(None, "no photo")])
    for row, (photo, caption) in enumerate([(PHOTOS[0], CAPTIONS[0]), (PHOTOS[1], CAPTIONS[1])]):
        single = DraftVectors(pipeline, max_pixels=40_000_000).embed([(photo, caption)])
        assert np.allclose(vectors.image[row], single.image[0], atol=1e-5)
        assert np.allclose(vectors.caption[row], single.caption[0], atol=1e-5)
        assert np.allclose(vectors.quality[row], single.quality[0])
    assert np.isnan(vectors.image[2]).all() and np.isnan(vectors.quality[2]).all()
    assert np.isfinite(vectors.caption[2]).all()


def test_prepared_posts_of_several_requests_finish_in_one_forward_pass_allclose_to_one_at_a_time(pipeline):
    alone = DraftVectors(pipeline)
    together = DraftVectors(pipeline)
    counter = Counting(together)
    posts = list(zip(PHOTOS, CAPTIONS, strict=True))
    expected = [alone.embed([post]) for post in posts]
    got = together.finish([together.prepare([post]) for post in posts])
    for e, g in zip(expected, got, strict=True):
        assert np.allclose(e.image, g.image, atol=1e-5) and np.allclose(e.caption, g.caption, atol=1e-5)
        assert np.allclose(e.quality, g.quality)
    assert len(counter.calls) == 1 and sorted(counter.calls[0]) == ["caption"] * len(posts) + ["image"] * len(
        posts)


def test_a_repeated_history_is_embedded_once(pipeline):
    vectors = DraftVectors(pipeline, cache_items=100)
    counter = Counting(vectors)
    history = list(zip(PHOTOS[:3], CAPTIONS[:3], strict=True))
    first = vectors.embed(history + [(PHOTOS[3], "draft one")])
    second = vectors.embed(history + [(PHOTOS[3], "draft two")])
    assert counter.calls[0].count("image") == 4 and counter.calls[0].count("caption") == 4
    assert counter.calls[1] == ["caption"]  # only the new caption
    assert np.array_equal(first.image, second.image) and np.array_equal(first.caption[:3], second.caption[:3])
    assert vectors.cache.info()["hits"] >= 7


def test_the_same_photo_twice_in_one_request_is_embedded_once(pipeline):
    vectors = DraftVectors(pipeline)
    counter = Counting(vectors)
    out = vectors.embed([(PHOTOS[0], "a"), (PHOTOS[0], "a")])
    assert counter.calls == [["caption", "image"]]
    assert np.array_equal(out.image[0], out.image[1])


def test_the_cache_is_bounded():
    cache = VectorCache(2)
    for i in range(5):
        cache.put(("caption", str(i)), np.zeros(3))
    assert len(cache) == 2 and cache.get(("caption", "0")) is None and cache.get(("caption", "4")) is not None
    with pytest.raises(ValueError, match="must be >= 0"):
        VectorCache(-1)


def test_an_unreadable_photo_is_named_by_its_position(pipeline):
    vectors = DraftVectors(pipeline, cache_items=10)
    with pytest.raises(PostImageError, match="not a readable image") as caught:
        vectors.embed([(PHOTOS[0], "fine"), (b"not a photo at all", "broken")])
    assert caught.value.index == 1


def test_photos_are_measured_the_way_the_model_was_trained(pipeline, monkeypatch):
    from engage.embed.decoding import decode_photo
    from engage.features.quality import QUALITY_COLUMNS, image_quality

    photo = _jpeg("coffee", side=1080)
    current = DraftVectors(pipeline).embed([(photo, "x")]).quality[0]
    monkeypatch.setattr(FeaturePipeline, "quality_version", property(lambda self: "quality-v1"))
    old = DraftVectors(pipeline).embed([(photo, "x")]).quality[0]
    picture, size = decode_photo(photo, decoding=pipeline.photo_decoding)
    for version, got in (("quality-v2", current), ("quality-v1", old)):
        measures = image_quality(picture, version, size=size)
        np.testing.assert_allclose(got, [measures[c] for c in QUALITY_COLUMNS], rtol=1e-6)
    assert old[0] > current[0] * 1.1  # sharpness: the box-averaged copy is softer


def _fitted(pipeline: FeaturePipeline, decoding: str | None) -> FeaturePipeline:
    """`pipeline` as a model trained with photo decoding `decoding` holds it (None: trained before it), with
    the current quality measures."""
    import copy

    fitted = copy.copy(pipeline)
    fitted.feature_names_ = ["x"]
    fitted.quality_version_ = pipeline.quality_version
    if decoding is not None:
        fitted.photo_decoding_ = decoding
    return fitted


def test_a_model_trained_before_scaled_decoding_scores_a_photo_as_before(pipeline):
    from engage.embed.decoding import open_image
    from engage.features.quality import QUALITY_COLUMNS, image_quality

    photo = _jpeg("coffee", side=1080)
    old = _fitted(pipeline, None)
    got = DraftVectors(old).embed([(photo, "x")])
    measures = image_quality(open_image(photo), old.quality_version)  # every pixel, as before
    np.testing.assert_array_equal(got.quality[0], np.array([measures[c] for c in QUALITY_COLUMNS],
                                                           dtype=np.float32))
    np.testing.assert_allclose(got.image[0], pipeline.image_embedder.embed([open_image(photo)])[0],
                               atol=1e-6)
    new = DraftVectors(_fitted(pipeline, "jpeg-scaled-v1")).embed([(photo, "x")])
    assert not np.array_equal(new.quality[0], got.quality[0])  # the new model decodes it at 540 px
    assert new.quality[0][6:9].tolist() == got.quality[0][6:9].tolist() == [1080.0, 1080.0, 1.0]
    assert float(new.image[0] @ got.image[0]) > 0.98


@pytest.mark.parametrize("decoding", [None, "jpeg-scaled-v1"])
def test_training_and_scoring_decode_a_photo_the_same_way(pipeline, tmp_path, decoding):
    """The vectors a model is trained on (`FeaturePipeline.embed` over files, through the engine and the
    cache) equal those it scores a draft with (`DraftVectors` over the same bytes), for either decoding."""
    import pandas as pd

    model = _fitted(pipeline, decoding)
    photos = [_jpeg("coffee", side=1080), _jpeg("chelsea", side=1350), _jpeg("rocket", side=320)]
    paths = []
    for i, photo in enumerate(photos):
        path = tmp_path / f"{decoding}-{i}.jpg"
        path.write_bytes(photo)
        paths.append(str(path))
    trained = model.embed(pd.DataFrame({"image": paths, "caption": ["a", "b", "c"]}), progress=False)
    scored = DraftVectors(model).embed([(photo, c) for photo, c in zip(photos, "abc", strict=True)])
    np.testing.assert_allclose(scored.image, trained.image, atol=1e-5)
    np.testing.assert_allclose(scored.quality, trained.quality, rtol=1e-6)
    assert trained.quality[:, 6].tolist() == [1080.0, 1350.0, 320.0]  # the photos' own widths
