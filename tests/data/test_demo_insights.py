"""The demo's insight counts: each documented effect moves its count the stated way, on constructed posts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engage.data.demo import load_demo, load_truth
from engage.data.demo.insights import (
    FOLLOW_RATE,
    HASHTAG_REACH,
    REACH_RATE,
    PostCues,
    simulate_insights,
)
from engage.data.schema import INSIGHT_COUNTS

TYPICAL = PostCues(followers=10_000, n_hashtags=0, time_effect=0.0, detail=0.4, inspiration=False,
                   image_quality=1.0,
                   off_style=False, felt_fake=False, sponsored=False, giveaway=False, link_in_bio=False)


def _draws(cues: PostCues, n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    counts, truth = zip(*(simulate_insights(rng, cues) for _ in range(n)), strict=True)
    return pd.DataFrame(counts), pd.DataFrame(truth)


def test_reach_is_a_share_of_followers_and_impressions_are_at_least_reach() -> None:
    counts, truth = _draws(TYPICAL)
    assert truth["expected_log_reach"].iloc[0] == pytest.approx(np.log(10_000 * REACH_RATE))
    assert counts["reach"].median() == pytest.approx(10_000 * REACH_RATE, rel=0.1)
    assert (counts["impressions"] >= counts["reach"]).all()
    assert (counts["follows"] <= counts["profile_visits"]).all() and (
        counts["link_clicks"] <= counts["profile_visits"]).all()


def test_hashtags_raise_reach_up_to_ten_and_cost_beyond() -> None:
    reach = {tags: _draws(replace(TYPICAL,
                                  n_hashtags=tags))[1]["reach_hashtags"].iloc[0] for tags in (0, 10, 30)}
    assert reach[10] == pytest.approx(10 * HASHTAG_REACH)
    assert reach[30] < reach[10]


def test_useful_content_is_saved_and_inspiring_content_shared() -> None:
    plain, _ = _draws(replace(TYPICAL, detail=0.0))
    useful, _ = _draws(replace(TYPICAL, detail=1.0))
    inspiring, _ = _draws(replace(TYPICAL, detail=0.0, inspiration=True))
    # saves per account reached: useful content more than doubles them (1.5 x 0.65 x 1 = +0.98 log)
    assert (useful["saves"] / useful["reach"]).mean() > 2.2 * (plain["saves"] / plain["reach"]).mean()
    # shares: inspiration weighs more than detail does (0.61 vs 0.5 x 0.65 per unit)
    gain_inspiring = (inspiring["shares"].mean() + 1) / (plain["shares"].mean() + 1)
    gain_useful = (useful["shares"].mean() + 1) / (plain["shares"].mean() + 1)
    assert gain_inspiring > 1.5 and gain_useful > 1.2


def test_follows_come_from_profile_visits_and_drop_for_an_off_style_photo() -> None:
    _, truth = _draws(TYPICAL, n=1)
    assert truth["follow_probability"].iloc[0] == pytest.approx(FOLLOW_RATE, abs=0.08)  # detail at its mean
    _, off = _draws(replace(TYPICAL, off_style=True), n=1)
    assert off["follow_probability"].iloc[0] < truth["follow_probability"].iloc[0] - 0.08


def test_link_in_bio_multiplies_link_clicks() -> None:
    plain, _ = _draws(TYPICAL)
    asked, _ = _draws(replace(TYPICAL, link_in_bio=True))
    assert asked["link_clicks"].sum() > 5 * plain["link_clicks"].sum()


def test_the_demo_population_carries_every_insight_count(tmp_path: Path) -> None:
    options = {"seed": 5, "n_accounts": 3, "posts_per_account": 8, "months": 2, "image_size": 64}
    posts = load_demo(tmp_path / "demo", **options)
    for column in INSIGHT_COUNTS:
        assert str(posts[column].dtype) == "Int64" and posts[column].notna().all(), column
    assert (posts["impressions"] >= posts["reach"]).all()
    truth = load_truth(tmp_path / "demo")
    assert {"expected_log_reach", "saves_log_effect", "follow_probability"} <= set(truth.columns)
