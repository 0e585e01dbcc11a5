"""FeaturePipeline keeps the scikit-learn contract:
parameters stored, state learned by fit, names declared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engage.config import Settings
from engage.data.schema import validate_posts
from engage.embed.decoding import FULL_DECODING, PHOTO_DECODING, PhotoDecoding
from engage.errors import NotFittedError
from engage.features.pipeline import FeaturePipeline
from engage.features.quality import QUALITY_COLUMNS, QUALITY_VERSION
from engage.features.vectors import PostVectors

# 'auto' resolves to EfficientNet offline, with a loud warning that these tests expect.
pytestmark = pytest.mark.filterwarnings("ignore:image embedder. using efficientnet:UserWarning")


def _settings(**image) -> Settings:
    return Settings.model_validate({"image": {"embedder": "auto", "device": "cpu", **image},
                                    "features": {"embedding_components": 2}, "train": {"seed": 3}})


def _posts(n: int = 12) -> pd.DataFrame:
    return validate_posts(pd.DataFrame({
        "account": ["a", "b"] * (n // 2), "post_id": [f"p{i}" for i in range(n)],
        "posted_at": pd.date_range("2024-01-01", periods=n, freq="7h", tz="UTC"),
        "caption": [f"post number {i} #tag{i % 3}" for i in range(n)], "likes": list(range(10, 10 + n)),
    }), file="<test>")


def _vectors(pipeline: FeaturePipeline, n: int = 12) -> PostVectors:
    rng = np.random.default_rng(0)
    def unit(dim: int) -> np.ndarray:
        m = rng.normal(size=(n, dim)).astype(np.float32)
        return m / np.linalg.norm(m, axis=1, keepdims=True)
    return PostVectors(unit(pipeline.image_embedder.dim), unit(pipeline.text_embedder.dim),
                       rng.random((n, len(QUALITY_COLUMNS))).astype(np.float32))


@pytest.fixture(scope="module")
def fitted() -> tuple[FeaturePipeline, PostVectors]:
    pipeline = FeaturePipeline.from_settings(_settings())
    vectors = _vectors(pipeline)
    return pipeline.fit(vectors), vectors


def _learned(pipeline: FeaturePipeline) -> list[str]:
    return sorted(k for k in vars(pipeline) if k.endswith("_") and not k.startswith("_"))


def test_transform_before_fit_is_a_not_fitted_error():
    pipeline = FeaturePipeline.from_settings(_settings())
    with pytest.raises(NotFittedError, match=r"FeaturePipeline.transform needs a fitted pipeline: call fit"):
        pipeline.transform(_posts(), _vectors(pipeline))


def test_building_embedders_learns_nothing_and_never_rewrites_the_settings():
    settings = _settings()
    pipeline = FeaturePipeline.from_settings(settings)
    _ = pipeline.image_embedder, pipeline.text_embedder  # 'auto' resolves to EfficientNet offline
    assert pipeline.image is settings.image and settings.image.embedder == "auto"
    assert (pipeline.text, pipeline.features, pipeline.seed) == (settings.text, settings.features,
                                                                 settings.train.seed)
    assert _learned(pipeline) == []


def test_the_pipeline_takes_only_the_settings_it_uses_and_reads_old_pickles_that_held_all_of_them():
    settings = _settings().model_copy(update={"train": _settings().train.model_copy(update={"seed": 7})})
    pipeline = FeaturePipeline.from_settings(settings)
    assert {k for k in vars(pipeline) if not k.startswith("_")} == {"image", "text", "features", "seed"}
    assert pipeline.seed == 7 and pipeline.onnx_dir == Path(settings.features.cache_dir) / "onnx"
    copy = FeaturePipeline(**pipeline.get_params())  # what a Ray worker rebuilds its embedders from
    assert copy.get_params() == pipeline.get_params() and copy is not pipeline
    old = FeaturePipeline.__new__(FeaturePipeline)  # as a bundle of the previous layout unpickles it
    old.__setstate__({"settings": settings, "_image_embedder": None, "_text_embedder": None,
                      "feature_names_": ["a"]})
    assert (old.image, old.text, old.features, old.seed) == (settings.image, settings.text, settings.features,
                                                             7)
    assert old.feature_names_ == ["a"] and not hasattr(old, "settings")


def test_fit_learns_the_embedder_ids_pcas_and_declared_feature_names(fitted):
    pipeline, vectors = fitted
    assert _learned(pipeline) == ["caption_pca_", "feature_names_", "image_embedder_id_", "image_pca_",
                                  "photo_decoding_", "quality_version_", "text_embedder_id_"]
    assert pipeline.quality_version == pipeline.quality_version_ == QUALITY_VERSION
    assert pipeline.photo_decoding.version == pipeline.photo_decoding_ == PHOTO_DECODING
    assert pipeline.image_embedder_id_ == "efficientnet:lite0:imagenet"
    assert pipeline.text_embedder_id_ == "minilm:all-MiniLM-L6-v2:128"
    assert pipeline.image_pca_.random_state == 3  # train.seed, not data.demo.seed
    assert pipeline.feature_names_[-4:] == ["photo_pc1", "photo_pc2", "caption_pc1", "caption_pc2"]
    features = pipeline.transform(_posts(), vectors)
    assert list(features.columns) == pipeline.feature_names_ and len(features) == 12


def test_captions_are_embedded_on_the_image_device():
    pipeline = FeaturePipeline.from_settings(_settings())
    assert pipeline.text_embedder.device == "cpu"


def test_a_pipeline_fitted_before_quality_versions_keeps_measuring_as_quality_v1(fitted):
    import copy

    old = copy.copy(fitted[0])
    del old.quality_version_  # what a bundle trained before quality-v2 unpickles to
    assert old.quality_version == "quality-v1"
    # not fitted yet: the current one
    assert FeaturePipeline.from_settings(_settings()).quality_version == QUALITY_VERSION


def test_a_pipeline_fitted_before_photo_decodings_keeps_decoding_in_full_and_its_cache_names(fitted):
    import copy
    import pickle

    pipeline = fitted[0]
    assert pipeline.photo_decoding == PhotoDecoding(PHOTO_DECODING, shortest=224, longest=512)
    assert pipeline.image_namespace == "efficientnet:lite0:imagenet+jpeg-scaled-v1:224x512"
    # what a bundle keeps: the pickled pipeline decodes as it was trained to
    assert pickle.loads(pickle.dumps(pipeline)).photo_decoding == pipeline.photo_decoding
    old = copy.copy(pipeline)
    del old.photo_decoding_  # what a bundle trained before jpeg-scaled-v1 unpickles to
    assert old.photo_decoding == FULL_DECODING
    assert old.image_namespace == "efficientnet:lite0:imagenet"  # its cached vectors are found as before
    old.photo_decoding_ = "full"
    refit = old.fit(fitted[1])  # fitting again keeps the decoding its vectors were made with
    assert refit.photo_decoding_ == "full"


def test_a_pipeline_fitted_before_a_feature_was_added_gets_its_own_columns_and_an_unknown_one_refits(fitted):
    import copy

    pipeline, vectors = fitted
    new = pipeline.transform(_posts(), vectors)
    old = copy.copy(pipeline)  # what a bundle trained before posts_last_30_days unpickles to
    old.feature_names_ = [c for c in pipeline.feature_names_ if c != "posts_last_30_days"]
    pd.testing.assert_frame_equal(old.transform(_posts(), vectors), new.drop(columns="posts_last_30_days"))
    old.feature_names_ = [*old.feature_names_, "a_feature_of_another_version"]
    with pytest.raises(NotFittedError, match="a_feature_of_another_version.*refit it"):
        old.transform(_posts(), vectors)


def test_a_later_post_scored_as_a_draft_sees_only_the_history_before_the_earlier_post(fitted):
    pipeline, vectors = fitted
    posts = _posts()  # account a: rows 0, 2, 4, ... with likes 10, 12, 14, ...; 14 hours apart
    features = pipeline.transform(posts, vectors)
    # Row 6 scored beside row 4: its history is rows 0 and 2 (likes 10 and 12); row 4 is not yet published.
    drafts = pipeline.transform_as_drafts(posts, vectors, np.array([6]), np.array([4]), features)
    assert drafts["likes_baseline"].iloc[0] == pytest.approx(np.mean(np.log1p([10, 12])))
    assert drafts["likes_last_vs_baseline"].iloc[0] == pytest.approx(
        np.log1p(12) - np.mean(np.log1p([10, 12])))
    assert drafts["n_earlier_posts"].iloc[0] == 2
    # from row 2 (hour 14) to row 6 (hour 42)
    assert drafts["days_since_previous"].iloc[0] == pytest.approx(28 / 24)
    # Its own caption and time, not the earlier post's.
    assert drafts["hour_utc"].iloc[0] == features["hour_utc"].iloc[6]
    assert drafts["caption_chars"].iloc[0] == features["caption_chars"].iloc[6]
    # The same as the features of a table from which row 4 is absent.
    kept = np.array([i for i in range(12) if i != 4])
    without = pipeline.transform(posts.iloc[kept].reset_index(drop=True), vectors.take(kept))
    pd.testing.assert_series_equal(drafts.iloc[0], without.iloc[list(kept).index(6)], check_names=False)


def test_a_draft_anchor_must_be_an_earlier_post_of_the_same_account(fitted):
    pipeline, vectors = fitted
    posts = _posts()
    features = pipeline.transform(posts, vectors)
    with pytest.raises(ValueError, match="earlier post of its row's account"):
        pipeline.transform_as_drafts(posts, vectors, np.array([4]), np.array([6]), features)
    with pytest.raises(ValueError, match="earlier post of its row's account"):
        pipeline.transform_as_drafts(posts, vectors, np.array([6]), np.array([5]), features)
