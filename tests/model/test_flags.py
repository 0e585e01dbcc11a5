"""Every flag's text is true for the case it is raised in (engage/model/explain.py `draft_flags`, and
engage/model/known.py: what the model knows about the
account), and the numbers of the cases known.py fixes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engage.model.explain import draft_flags
from engage.model.known import (
    SimilarAccounts,
    early_context,
    knowledge_flags,
    rebase,
    within_own_range,
)

NORMS = {
    "photo_consistency_p10": 0.40,
    "photo_consistency_p50": 0.6,
    "sharpness_p10": 50.0,
    "brightness_p5": 0.2,
    "hashtags_p95": 12.0,
    "caption_chars_p95": 600.0,
}
NAN = math.nan


def _flags(**values: float) -> dict[str, str]:
    row = pd.Series({"hashtags": 2, "hashtags_z": 0.0, "caption_chars": 80, "caption_chars_z": 0.0, **values})
    return {f["code"]: f["message"] for f in draft_flags(row, NORMS, window_hours=24)}


def test_a_plain_draft_raises_no_flag():
    assert _flags() == {}


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"hashtags": 9, "hashtags_z": 3.1}, "9 hashtags is far more than this account usually uses"),
        (
            {"hashtags": 14, "hashtags_z": NAN},
            "14 hashtags is more than 95% of the training posts carry (12)",
        ),
        (
            {"hashtags": 25, "hashtags_z": 0.5},
            "25 hashtags is more than 20, which reads as stuffing whatever the account's habit",
        ),
    ],
)
def test_too_many_hashtags_says_against_what(values, words):
    assert _flags(**values)["too_many_hashtags"].startswith(words)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (
            {"caption_chars": 400, "caption_chars_z": 2.5},
            "The caption (400 characters) is much longer than this account's usual",
        ),
        (
            {"caption_chars": 700, "caption_chars_z": NAN},
            "The caption (700 characters) is longer than 95% "
            "of the training posts' captions (600 characters)",
        ),
    ],
)
def test_caption_too_long_says_against_what(values, words):
    assert _flags(**values)["caption_too_long"].startswith(words)
    assert "caption_too_long" not in _flags(
        caption_chars=700, caption_chars_z=1.0
    )  # long, but usual for the account


def test_disclosure_and_brand_messaging_name_what_the_caption_holds():
    flags = _flags(has_ad=1, has_sponsored=1, brand_phrases=2)
    assert flags["disclosure_tags"].startswith(
        "#ad/#sponsored makes audiences read the post as less authentic"
    )
    assert flags["brand_messaging"].startswith(
        "The caption uses brand-messaging phrases (e.g. 'shop now', 'limited offer')"
    )


def test_photo_flags_give_the_figure_and_the_training_posts_they_are_compared_with():
    flags = _flags(image_feed_similarity=0.31, sharpness=12.0, brightness=0.1)
    assert flags["off_style_photo"].startswith(
        "This photo is further from your recent posts' look (similarity 0.31) "
        "than 90% of the training posts were from their feeds' (0.40)"
    )
    assert (
        flags["blurry_photo"]
        == "The photo is blurrier than 90% of the training posts' photos; use a sharper shot."
    )
    assert flags["dark_photo"].startswith("The photo is darker than 95% of the training posts' photos")
    assert not {"off_style_photo", "blurry_photo", "dark_photo"} & set(
        _flags(image_feed_similarity=0.5, sharpness=80.0)
    )


def test_the_same_post_elsewhere_counts_the_accounts_in_the_window():
    assert _flags(duplicate_image_accounts=1)["same_post_elsewhere_today"].startswith(
        "1 other account posted the same photo or caption in the 24 hours before this draft"
    )
    assert _flags(duplicate_caption_accounts=3)["same_post_elsewhere_today"].startswith(
        "3 other accounts posted"
    )


def _context() -> pd.DataFrame:
    """Six training accounts of 1k to 100M followers, two posts each, likes about 5% of followers."""
    followers = [1_000, 10_000, 50_000, 200_000, 5_000_000, 100_000_000]
    rows = []
    for i, f in enumerate(followers):
        for k in range(2):
            rows.append(
                {
                    "account": f"a{i}",
                    "followers": f,
                    "likes": int(f * 0.05 * (1 + 0.1 * k)),
                    "comments": int(f * 0.002),
                    "posted_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=k),
                }
            )
    return pd.DataFrame(rows)


def test_an_unknown_account_is_scored_from_accounts_of_its_size_and_an_outlier_is_said_and_widened():
    sizes = SimilarAccounts(_context(), {"likes": "likes", "comments": "comments"})
    inside = sizes.level("likes", 20_000)
    assert not inside.outside and inside.widening == 0
    assert 0.04 * 20_000 < np.expm1(inside.level) < 0.06 * 20_000  # the neighbours' likes per follower
    small = sizes.level("likes", 100)
    assert small.outside and small.widening > 0.5
    assert (small.range_low, small.range_high) == (1_000, 100_000_000)
    answer = rebase(
        {"expected": 10.3, "low": 9.8, "high": 10.9}, 10.3, small
    )  # the model's own level was 10.3
    assert answer["expected"] == pytest.approx(small.level) and 3 < np.expm1(answer["expected"]) < 7
    assert answer["high"] - answer["low"] == pytest.approx(1.1 + 2 * small.widening)
    assert sizes.level("likes", None) is None
    flags = {
        f["code"]: f["message"]
        for f in knowledge_flags(
            account="new", known=False, early=None, followers=100, sizes={"likes": small}
        )
    }
    assert flags["unknown_account"].startswith(
        "This account has no history in the model and none was "
        "sent: its counts are those of the 5 training accounts "
        "closest in size (1,000 to 5,000,000 followers), per follower, for its 100 followers."
    )
    assert flags["followers_outside_training"].startswith(
        "100 followers is fewer than any account the model was trained on (1,000 to 100,000,000)"
    )
    inside_flags = knowledge_flags(
        account="new", known=False, early=None, followers=20_000, sizes={"likes": inside}
    )
    assert [f["code"] for f in inside_flags] == ["unknown_account"]


def test_an_unknown_account_without_followers_is_told_the_prediction_is_the_typical_level():
    (flag,) = knowledge_flags(account="new", known=False, early=None, followers=None, sizes={})
    assert flag["message"].startswith(
        "This account has no history in the model and none was sent, and no follower "
        "count was sent: the prediction is the typical level of the training posts."
    )
    (flag,) = knowledge_flags(
        account="new", known=False, early=None, followers=None, sizes={}, history_sent=True
    )
    assert "the history sent has no post before the draft" in flag["message"]
    assert knowledge_flags(account="old", known=True, early=None, followers=None, sizes={}) == []


def test_a_draft_before_the_first_stored_post_gets_the_earliest_posts_redated_just_before_it():
    posts = _context().query("account == 'a2'").reset_index(drop=True)
    when = pd.Timestamp("2023-06-01", tz="UTC")
    shifted = early_context(posts, when)
    assert list(shifted["posted_at"]) == [
        pd.Timestamp("2023-05-30", tz="UTC"),
        pd.Timestamp("2023-05-31", tz="UTC"),
    ]
    assert list(shifted["likes"]) == list(posts["likes"])
    (flag,) = knowledge_flags(
        account="natgeo", known=True, early=(posts["posted_at"].iloc[0], 2), followers=None, sizes={}
    )
    assert flag == {
        "code": "before_known_history",
        "message": (
            "This draft is dated before natgeo's first post known "
            "to the model (2024-01-01); it is scored at the "
            "account's level then: its earliest 2 stored posts serve as its history."
        ),
    }


def test_expected_counts_stay_inside_the_range_of_the_accounts_own_posts_and_keep_their_order():
    own = np.array([14_184.0, 20_000.0, 31_000.0, NAN])
    low = within_own_range(
        {"expected": np.log1p(8_465), "low": np.log1p(5_000), "high": np.log1p(12_000)}, own
    )
    assert 14_184 < np.expm1(low["expected"]) < 16_000 and low["high"] == pytest.approx(low["expected"])
    lower = within_own_range({"expected": np.log1p(2_000), "low": 7.0, "high": 8.0}, own)
    assert 14_184 < np.expm1(lower["expected"]) < np.expm1(low["expected"])  # further below stays below
    high = within_own_range({"expected": np.log1p(90_000), "low": 10.0, "high": 12.0}, own)
    assert 28_000 < np.expm1(high["expected"]) < 31_000 and high["high"] == 12.0
    inside = {"expected": np.log1p(20_500), "low": 9.0, "high": 10.5}
    assert within_own_range(inside, own) == inside  # the middle of the range is left as it is
    same = np.array([0.0, 0.0, 0.0])
    assert within_own_range({"expected": 0.4, "low": 0.0, "high": 1.0}, same)["expected"] == 0.0
    assert within_own_range({"expected": 1.0, "low": 0.5, "high": 2.0}, own[:2]) == {
        "expected": 1.0,
        "low": 0.5,
        "high": 2.0,
    }


def test_the_accounts_level_is_kept_in_its_own_range_with_the_expected_count_so_usual_and_uplift_agree():
    own = np.array([14_184.0, 20_000.0, 31_000.0])
    level, uplift = np.log1p(8_000), 0.1
    kept = within_own_range({"expected": level + uplift, "low": level - 1, "high": level + 1, "level": level,
                             "uplift": uplift}, own)
    assert 14_184 < np.expm1(kept["level"]) < np.expm1(kept["expected"]) < 16_000
    assert kept["uplift"] == pytest.approx(kept["expected"] - kept["level"])
    middle = {"expected": np.log1p(20_500), "low": 9.0, "high": 10.5, "level": np.log1p(20_000),
              "uplift": np.log1p(20_500) - np.log1p(20_000)}
    assert within_own_range(middle, own) == middle


def test_an_unknown_accounts_level_moves_to_the_similar_accounts_level_and_the_uplift_stays():
    size = SimilarAccounts(
        pd.DataFrame({"account": ["a", "b", "c"], "followers": [2_000, 2_500, 3_000], "likes": [20, 25, 30]}),
        {"likes": "likes"},
    ).level("likes", 2_400)
    moved = rebase({"expected": 11.0, "low": 10.0, "high": 12.0, "level": 10.5, "uplift": 0.5}, 10.5, size)
    assert moved["level"] == pytest.approx(size.level)
    assert moved["expected"] - moved["level"] == pytest.approx(0.5) and moved["uplift"] == 0.5
