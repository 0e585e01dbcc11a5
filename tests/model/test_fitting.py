"""Fitting rules that need no trained model: which rows early-stop, which seed, when a version is champion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST

import engage.model.targets as targets
import engage.training as training
from engage.config import Settings
from engage.model import evaluation as ev
from engage.model.plans import FitPlan


def _posts(n_per_account: int, accounts: dict[str, str]) -> pd.DataFrame:
    """Posts sorted by account, as the loaders give them; `accounts` maps account -> first post's date."""
    rows = []
    for account, start in accounts.items():
        for i in range(n_per_account):
            rows.append({"account": account,
                         "posted_at": pd.Timestamp(start, tz="UTC") + pd.Timedelta(days=i)})
    return pd.DataFrame(rows)


class _Recorder:
    """Stands in for CountModel / RiskModel: records what it is fitted on and with which seed."""

    calls: list[dict] = []

    def __init__(self, *args, **options):
        self.seed = args[-1]

    def lightgbm_jobs(self, train, y_train, valid, y_valid, groups_train=None, groups_valid=None):
        # fit_targets hands the models' LightGBM jobs to the engine in one batch; this model has none.
        _Recorder.calls.append({"train": list(train.index), "valid": list(valid.index), "seed": self.seed,
                                "frames": (train, valid)})
        return FitPlan([], {})

    def finish(self, fitted, plan):
        return self


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> type[_Recorder]:
    _Recorder.calls = []
    # The registry's entries build the models (Target.make_model), so the stand-in replaces them there.
    monkeypatch.setattr(targets, "CountModel", _Recorder)
    monkeypatch.setattr(targets, "RiskModel", _Recorder)
    return _Recorder


def test_with_tiny_data_early_stopping_uses_the_latest_posts_not_the_last_accounts(recorder):
    # Account "a" posted last; sorted by account, "z" (the earliest posts) comes last in the table.
    posts = _posts(10, {"a": "2024-06-01", "z": "2024-01-01"})
    times = posts["posted_at"].to_numpy()
    split = ev.Split(train=np.arange(20), valid=np.array([], dtype=int), test=np.array([], dtype=int),
                     how="test", times=times)
    features = pd.DataFrame({"x": np.arange(20.0)})
    training.fit_targets(Settings(), features, {"likes": np.arange(20.0)}, split)
    valid = recorder.calls[0]["valid"]
    assert len(valid) == 3
    assert set(valid) == {7, 8, 9}  # account a's three latest posts, the latest of all
    assert times[valid].min() > times[recorder.calls[0]["train"]].max()


def test_the_training_seed_is_its_own_setting_not_the_demo_simulators(recorder):
    settings = Settings.model_validate({"train": {"seed": 5}, "data": {"demo": {"seed": 1}}})
    posts = _posts(10, {"a": "2024-01-01"})
    split = ev.time_split(posts, 0.2, 0.5)
    training.fit_targets(settings, pd.DataFrame({"x": np.arange(10.0)}), {"likes": np.arange(10.0)}, split)
    assert recorder.calls[0]["seed"] == 5


def test_targets_known_on_the_same_posts_share_one_copy_of_their_rows(recorder):
    posts = _posts(20, {"a": "2024-01-01", "b": "2024-01-05"})
    split = ev.time_split(posts, 0.2, 0.2)
    features = pd.DataFrame({"x": np.arange(40.0)})
    comments = np.arange(40.0)
    comments[split.train[:3]] = np.nan  # unknown on three training posts: its own rows
    training.fit_targets(Settings(), features, {"likes": np.arange(40.0), "impressions": np.arange(40.0) + 1,
                                                "comments": comments}, split)
    (likes_train, likes_valid), (impressions_train, impressions_valid), (comments_train, comments_valid) = [
        call["frames"] for call in recorder.calls]
    assert impressions_train is likes_train and impressions_valid is likes_valid
    assert comments_train is not likes_train and comments_valid is likes_valid
    assert len(comments_train) == len(likes_train) - 3
    pd.testing.assert_frame_equal(likes_train, features.iloc[split.train])


class _Registry:
    """An MLflow client whose champion lookup fails with `error`."""

    def __init__(self, error: Exception):
        self.error = error

    def get_model_version_by_alias(self, name: str, alias: str):
        raise self.error


@pytest.mark.parametrize("error", [
    MlflowException("Registered model alias champion not found.", error_code=INVALID_PARAMETER_VALUE),
    MlflowException("Registered Model with name=engage not found", error_code=RESOURCE_DOES_NOT_EXIST),
])
def test_a_first_version_becomes_champion_when_there_is_none(error):
    assert training.choose_alias(_Registry(error), "engage", "1", {},
                                 "hash") == ("champion", "no champion existed")


@pytest.mark.parametrize("error", [
    MlflowException("database is locked", error_code=INTERNAL_ERROR),
    ConnectionError("tracking server unreachable"),
])
def test_a_registry_that_fails_to_answer_never_promotes(error):
    alias, why = training.choose_alias(_Registry(error), "engage", "2", {}, "hash")
    assert alias == "challenger"
    assert "could not be read" in why and "promote by hand" in why
