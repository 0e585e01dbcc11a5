"""The outcome loop over a simulated month: publish, record, retrain from outcomes, promote only when better."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.outcomes.retrain import OUTCOME_METRIC
from engage.outcomes.simulate import simulate_months


def _loop_settings(smoke_settings):
    settings = smoke_settings.model_copy(deep=True)
    settings.train.targets = ["likes", "comments"]
    return settings


@pytest.mark.slow
def test_a_simulated_month_retrained_from_outcomes_is_promoted_and_predicts_the_next_month_better(
        smoke_settings, tmp_path: Path) -> None:
    result = simulate_months(_loop_settings(smoke_settings), tmp_path / "loop")
    print(result)
    assert (result.first_model, result.retrained_model) == ("1", "2")
    assert result.month_one_posts >= 30 and result.month_two_posts >= 30
    assert result.metrics["outcome_evaluation_posts"] >= 10
    # Promoted on the posts neither model trained on, by the stated margin, and it pays off in the next month.
    assert result.retrained_alias == "champion", result.retrained_reason
    assert result.metrics[OUTCOME_METRIC] <= 0.98 * result.metrics[f"champion_{OUTCOME_METRIC}"]
    before, after = result.live_mae["first, month two"], result.live_mae["retrained, month two"]
    assert after["likes_mae_log"] < before["likes_mae_log"]


@pytest.mark.slow
def test_a_worse_model_retrained_from_outcomes_stays_challenger_with_the_reason(smoke_settings, tmp_path: Path) -> None:
    # One leaf-less tree: the retrained model can only say the account's trailing level.
    result = simulate_months(_loop_settings(smoke_settings), tmp_path / "loop", retrain_overrides={
        "train.lightgbm.n_estimators": 1, "train.lightgbm.min_child_samples": 100000})
    assert result.retrained_alias == "challenger"
    assert "not 2% better" in result.retrained_reason and "neither trained on" in result.retrained_reason
    assert result.metrics[OUTCOME_METRIC] > 0.98 * result.metrics[f"champion_{OUTCOME_METRIC}"]
