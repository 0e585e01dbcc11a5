"""Explanations in words (engage/model/explain.py): factors name the draft's value, not just the feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engage.model.explain import describe_value, draft_skill, top_factors


@pytest.mark.parametrize(("name", "value", "words"), [
    ("sponsored", 0.0, "not sponsored"),
    ("sponsored", 1.0, "sponsored post"),
    ("sponsored", float("nan"), "sponsorship not stated"),
    ("hashtags", 3.0, "3 hashtags"),
    ("hashtags", 1.0, "1 hashtag"),
    ("has_ad", 0.0, "no #ad tag"),
    ("hour_utc", 19.0, "posting at 19:00 UTC"),
    ("weekday", 6.0, "posting on a Sunday"),
    ("followers", 12345.0, "12,345 followers"),
    ("hashtags_z", 2.5, "hashtags compared with your habit (+2.5 standard deviations)"),
    ("sharpness", 0.1234, "photo sharpness: 0.123"),
])
def test_a_feature_is_described_with_the_drafts_value(name, value, words):
    assert describe_value(name, value) == words


class _Contributions:
    """A likes model stand-in whose per-feature contributions are given (last column: the bias)."""

    def __init__(self, values: list[float]):
        self.values = values

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        return np.array([[*self.values, 5.0]])


def test_factors_name_the_value_and_sum_the_photo_components_into_one():
    features = pd.DataFrame({"sponsored": [0.0], "hashtags": [3.0], "photo_pc1": [0.2], "photo_pc2": [-1.0]})
    factors = top_factors(features, _Contributions([0.3, -0.05, 0.1, 0.15]), n=3)
    assert factors == [
        {"feature": "not sponsored", "contribution": 0.3, "part": "draft"},
        {"feature": "what the photo shows", "contribution": 0.25, "part": "draft"},
        {"feature": "3 hashtags", "contribution": -0.05, "part": "draft"},
    ]


def test_factors_say_whether_they_move_the_accounts_usual_or_the_drafts_uplift():
    features = pd.DataFrame({"likes_baseline": [5.0], "hashtags": [3.0]})
    model = _Contributions([0.4, -0.1])
    model.feature_names_, model.level_names_ = ["likes_baseline", "hashtags"], ["likes_baseline"]
    assert [f["part"] for f in top_factors(features, model, n=2)] == ["usual", "draft"]


def test_draft_skill_says_in_words_whether_the_model_can_tell_two_drafts_apart():
    small = draft_skill({"test_likes_draft_pairs_7d": 0.75, "test_likes_draft_pairs_7d_n": 8.0,
                         "n_train": 160.0})
    assert small["tells_drafts_apart"] is False
    assert "Trained on 160 posts" in small["message"] and "cannot yet tell two drafts apart" in small[
        "message"]
    # 53% of 2,633 pairs: the 90% interval's lower end (0.514) is above a coin's 0.5.
    large = draft_skill({"test_likes_draft_pairs_7d": 0.53, "test_likes_draft_pairs_7d_n": 2633.0,
                         "n_train": 13617.0})
    assert large["tells_drafts_apart"] is True and "53% right" in large["message"]
    coin = draft_skill({"test_likes_draft_pairs_7d": 0.52, "test_likes_draft_pairs_7d_n": 400.0,
                        "n_train": 2000.0})
    assert coin["tells_drafts_apart"] is False and "no surer than a coin" in coin["message"]
    assert draft_skill({})["pairs"] == 0
