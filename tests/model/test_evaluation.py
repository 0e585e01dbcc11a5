"""The time split and the metrics every run logs, on constructed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engage.model import evaluation as ev


def _posts(counts: dict[str, int]) -> pd.DataFrame:
    rows = []
    for account, n in counts.items():
        for i in range(n):
            rows.append({"account": account,
                         "posted_at": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=i)})
    return pd.DataFrame(rows)


def test_time_split_holds_out_each_accounts_latest_posts_and_validates_before_them():
    posts = _posts({"a": 50, "b": 30})
    split = ev.time_split(posts, test_fraction=0.2, valid_fraction=0.15)
    for account, n in (("a", 50), ("b", 30)):
        rows = posts.index[posts["account"] == account]
        test = np.intersect1d(split.test, rows)
        valid = np.intersect1d(split.valid, rows)
        train = np.intersect1d(split.train, rows)
        assert len(test) == round(0.2 * n)
        assert posts["posted_at"][test].min() > posts["posted_at"][valid].max() > posts["posted_at"][
            train].max()
    assert len(np.intersect1d(split.test, split.train)) == 0
    assert split.how == "each account's latest posts"


def test_time_split_falls_back_to_latest_posts_overall_when_accounts_have_one_post():
    posts = _posts({f"acc{i}": 1 for i in range(100)})
    posts["posted_at"] = [pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=i) for i in range(100)]
    split = ev.time_split(posts, 0.2, 0.15)
    assert len(split.test) == 20
    assert posts["posted_at"][split.test].min() > posts["posted_at"][split.train].max()
    assert "overall" in split.how


def test_spearman_of_a_constant_prediction_is_zero_and_of_a_perfect_one_is_one():
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    assert ev.spearman(actual, np.full(4, 2.0)) == 0.0
    assert ev.spearman(actual, actual * 10) == pytest.approx(1.0)
    assert np.isnan(ev.spearman(actual[:2], actual[:2]))


def test_within_account_spearman_averages_only_accounts_with_five_test_posts():
    accounts = np.array(["a"] * 5 + ["b"] * 5 + ["c"] * 3)
    actual = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3], dtype=float)
    predicted = np.array([1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 3, 2, 1], dtype=float)  # a: +1, b: -1, c ignored
    assert ev.spearman_within_account(accounts, actual, predicted) == pytest.approx(0.0)
    predicted[5:10] = actual[5:10]
    assert ev.spearman_within_account(accounts, actual, predicted) == pytest.approx(1.0)


def test_relative_spearman_removes_the_account_level():
    # Two accounts at very different levels; the model only knows the level, not the post: no skill.
    accounts = np.array(["a"] * 4 + ["b"] * 4)
    level = np.array([2.0] * 4 + [6.0] * 4)
    actual = level + np.array([0.1, -0.1, 0.3, -0.3, 0.2, -0.2, 0.0, 0.1])
    metrics = ev.count_metrics("test", "likes", accounts, actual, level.copy(), level)
    assert metrics["test_likes_spearman"] > 0.8  # the level alone ranks well across accounts
    assert metrics["test_likes_spearman_relative"] == 0.0  # but says nothing about the post


def test_interval_coverage_counts_actuals_inside_the_range():
    actual = np.array([1.0, 2.0, 3.0, np.nan, 10.0])
    assert ev.interval_coverage(actual, actual - 1, actual + 1) == 1.0
    assert ev.interval_coverage(actual, np.array([0, 0, 0, 0, 0.0]),
                                np.array([1.5, 1.5, 1.5, 1.5, 1.5])) == 0.25


def test_expected_calibration_error_is_zero_when_rates_match_and_large_when_overconfident():
    labels = np.array([1, 0] * 50, dtype=float)
    assert ev.expected_calibration_error(labels, np.full(100, 0.5)) == pytest.approx(0.0)
    assert ev.expected_calibration_error(labels, np.full(100, 0.95)) == pytest.approx(0.45)


def test_account_training_baseline_uses_only_fit_rows_and_global_mean_for_new_accounts():
    posts = pd.DataFrame({"account": ["a", "a", "a", "b", "c"]})
    values = np.array([1.0, 3.0, 100.0, 5.0, 7.0])
    baseline = ev.account_training_baseline(posts, values, fit_rows=np.array([0, 1, 3]),
                                            rows=np.array([2, 4]))
    assert baseline[0] == pytest.approx(2.0)  # a's training mean, not its test value
    assert baseline[1] == pytest.approx(3.0)  # c is new: mean of 1, 3, 5


def test_draft_pairs_are_posts_of_one_account_at_most_seven_days_apart_same_day_by_post_id():
    day = pd.Timestamp("2024-01-01", tz="UTC")
    posts = pd.DataFrame({
        "account": ["a", "a", "a", "a", "b"],
        # Two posts of account a on one day: shortcode "B" was made after "A" whatever the table order.
        "post_id": ["B", "A", "C", "D", "E"],
        "posted_at": [day, day, day + pd.Timedelta(days=7), day + pd.Timedelta(days=14, hours=1), day],
    })
    earlier, later = ev.draft_pairs(posts, np.arange(5))
    assert sorted(zip(earlier.tolist(), later.tolist(), strict=True)) == [(0, 2), (1, 0), (1, 2)]


def test_pair_accuracy_drops_ties_of_labels_and_of_predictions():
    accuracy, n = ev.pair_accuracy(np.array([1.0, 1.0, 2.0, 3.0]), np.array([2.0, 1.0, 1.0, 4.0]),
                                   np.array([0.0, 0.0, 5.0, 1.0]), np.array([1.0, 1.0, 4.0, 1.0]))
    # pair 0: right; pair 1: equal labels (dropped); pair 2: right; pair 3: equal predictions (dropped)
    assert (accuracy, n) == (1.0, 2)
    accuracy, n = ev.pair_accuracy(np.array([1.0]), np.array([2.0]), np.array([3.0]), np.array([2.0]))
    assert (accuracy, n) == (0.0, 1)


def test_within_account_spearman_is_the_mean_over_accounts_with_enough_posts_in_any_row_order():
    rng = np.random.default_rng(1)
    accounts = np.array(["b"] * 6 + ["a"] * 5 + ["c"] * 4, dtype=object)  # c has too few posts
    actual = rng.normal(size=15)
    predicted = actual.copy()
    predicted[:6] = -actual[:6]  # b: perfectly reversed
    predicted[11] = np.nan
    expected = np.mean([-1.0, 1.0])
    assert ev.spearman_within_account(accounts, actual, predicted) == pytest.approx(expected)
    order = rng.permutation(15)
    assert ev.spearman_within_account(accounts[order], actual[order],
                                      predicted[order]) == pytest.approx(expected)


def test_metrics_that_cannot_be_computed_are_named_with_the_reason():
    import math

    import numpy as np
    import pandas as pd

    from engage.model.evaluation import uncomputable_metrics

    posts = pd.DataFrame({"account": ["a", "a", "b", "b", "b"]})
    metrics = {"test_likes_spearman_within_account": math.nan, "test_risk_auc": math.nan,
               "test_likes_mae_log1p": 0.4}
    reasons = uncomputable_metrics(metrics, np.array([0, 1, 2, 3]), posts)
    assert reasons == {
        "test_likes_spearman_within_account": "no account has 5 or more test posts (the most is 2)",
                       "test_risk_auc": "the test posts hold one class only"}
