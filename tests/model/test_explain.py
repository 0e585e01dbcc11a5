"""Explanations in words (engage/model/explain.py): factors name the draft's value, not just the feature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engage.model.explain import describe_value, top_factors


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
        {"feature": "not sponsored", "contribution": 0.3},
        {"feature": "what the photo shows", "contribution": 0.25},
        {"feature": "3 hashtags", "contribution": -0.05},
    ]
