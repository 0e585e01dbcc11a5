"""The outcome loop over a simulated month: publish,
record, retrain from outcomes, promote only when better."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.outcomes.retrain import OUTCOME_METRIC
from engage.simulated_month import simulate_months


@pytest.mark.slow
def test_a_month_of_outcomes_retrains_a_better_champion_and_a_worse_model_stays_challenger(
        smoke_settings, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from engage.training import train

    settings = smoke_settings.model_copy(deep=True)
    settings.train.targets = ["likes", "comments"]
    result = simulate_months(settings, tmp_path / "loop")
    print(result)
    assert (result.first_model, result.retrained_model) == ("1", "2")
    assert result.month_one_posts >= 30 and result.month_two_posts >= 30
    assert result.metrics["outcome_evaluation_posts"] >= 10
    # Promoted on the posts neither model trained on, by the stated margin, and it pays off in the next month.
    assert result.retrained_alias == "champion", result.retrained_reason
    assert result.metrics[OUTCOME_METRIC] <= 0.98 * result.metrics[f"champion_{OUTCOME_METRIC}"]
    before, after = result.live_mae["first, month two"], result.live_mae["retrained, month two"]
    assert after["likes_mae_log"] < before["likes_mae_log"]
    assert result.difference[0] == pytest.approx(after["likes_mae_log"] - before["likes_mae_log"])

    # The same data again, with a model that memorises it
    # (learning rate 1, a leaf per post, no regularisation).
    worse = result.retrain_settings.model_copy(deep=True)
    lgbm = worse.train.lightgbm
    lgbm.learning_rate, lgbm.num_leaves, lgbm.min_child_samples, lgbm.reg_lambda = 1.0, 255, 1, 0.0
    lgbm.n_estimators, lgbm.early_stopping_rounds, lgbm.subsample, lgbm.colsample_bytree = 400, 400, 1.0, 1.0
    third = train(worse, progress=False)
    assert third.model_version == "3" and third.alias == "challenger", third.alias_reason
    assert "not 2% better" in third.alias_reason and "neither trained on" in third.alias_reason
    assert third.metrics[OUTCOME_METRIC] > 0.98 * third.metrics[f"champion_{OUTCOME_METRIC}"]
    champion = MlflowClient(worse.tracking.uri).get_model_version_by_alias("engage", "champion")
    assert str(champion.version) == "2"
