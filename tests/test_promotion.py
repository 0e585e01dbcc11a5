"""Promotion that tells the truth: the account baseline, data fingerprints, `python -m engage.promote`, and
metrics that cannot be computed (a real MLflow store, runs and versions made by hand)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from engage import training
from engage.promote import main as promote_main
from engage.summary import summary_table
from engage.training import TrainResult, choose_alias, choose_data_alias, data_alias

DATA, OTHER = "a" * 64, "b" * 64


def _metrics(
    mae: float, base: float, relative: float, comments_mae: float = 0.9, comments_base: float = 1.0
) -> dict:
    return {
        "test_likes_mae_log1p": mae,
        "baseline_likes_mae_log1p": base,
        "test_likes_spearman_relative": relative,
        "test_comments_mae_log1p": comments_mae,
        "baseline_comments_mae_log1p": comments_base,
        "n_train": 80.0,
        "n_test": 20.0,
        "n_accounts": 4.0,
    }


@pytest.fixture
def registry(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("engage")
    client.create_registered_model("engage")

    def register(metrics: dict, data: str, *aliases: str) -> str:
        run = client.create_run(experiment, tags={"data_sha256": data}, run_name=f"run on {data[:4]}")
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value)
        version = str(
            client.create_model_version("engage", f"runs:/{run.info.run_id}/model", run.info.run_id).version
        )
        for alias in aliases:
            client.set_registered_model_alias("engage", alias, version)
        return version

    return client, register, uri


def test_a_model_no_better_than_the_baseline_is_not_promoted_over_a_champion_that_is(registry):
    client, register, _ = registry
    register(_metrics(0.40, 0.47, 0.10), DATA, "champion")
    alias, why = choose_alias(client, "engage", "2", _metrics(0.476, 0.472, 0.30), DATA)
    assert alias == "challenger"
    assert why == "it is no better than the account baseline on likes (MAE 0.476 vs 0.472) and champion v1 is"
    # The other way round, beating the baseline wins over a higher Spearman of a champion that does not.
    client.set_registered_model_alias("engage", "champion", register(_metrics(0.50, 0.47, 0.50), DATA))
    alias, why = choose_alias(client, "engage", "3", _metrics(0.45, 0.47, 0.05), DATA)
    assert (alias, why) == ("champion", "it beats the account baseline on likes and champion v2 did not")


def test_a_model_on_other_data_takes_its_own_data_alias_and_the_summary_says_how_to_serve_it(registry):
    client, register, uri = registry
    register(_metrics(0.40, 0.47, 0.10), DATA, "champion", data_alias(DATA))
    metrics = _metrics(0.30, 0.35, 0.20)
    alias, why = choose_alias(client, "engage", "2", metrics, OTHER)
    assert alias == "challenger" and "other data (fingerprint differs)" in why
    assert choose_data_alias(client, "engage", metrics, OTHER) == (
        True,
        "the first version trained on this data",
    )
    assert choose_data_alias(client, "engage", _metrics(0.5, 0.47, 0.0), DATA)[0] is False
    result = TrainResult(
        metrics,
        "run",
        "2",
        alias,
        why,
        {},
        "",
        "e",
        tracking_uri=uri,
        data_alias=data_alias(OTHER),
        data_alias_reason="the first version trained on this data",
        experiment_id="3",
    )
    table = summary_table(result)
    assert f"serve this version: python serve.py --model models:/engage/2 --tracking-uri {uri}" in table
    assert (
        "or the best on this data: python serve.py --model "
        f"models:/engage@data-bbbbbbbbbbbb --tracking-uri {uri}"
        in table
    )
    assert (
        f"make it the champion (what python serve.py serves): python -m engage.promote 2 --tracking-uri {uri}"
        in table
    )
    assert "then the runs: http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning" in table


def test_python_m_engage_promote_moves_the_champion_and_says_from_what(registry, capsys):
    client, register, uri = registry
    register(_metrics(0.40, 0.47, 0.10), DATA, "champion")
    version = register(_metrics(0.30, 0.35, 0.20), OTHER, "challenger")
    assert promote_main([version, "--tracking-uri", uri]) == 0
    assert str(client.get_model_version_by_alias("engage", "champion").version) == version
    out = capsys.readouterr().out
    assert (
        "champion is now engage v2: run 'run on bbbb', data "
        "bbbbbbbbbbbb, 100 posts of 4 accounts, likes MAE 0.300"
        in out
    )
    assert "(was: engage v1: run 'run on aaaa'" in out and "/admin/reload" in out
    assert promote_main(["7", "--tracking-uri", uri]) == 2
    assert "engage version 7 is not registered" in capsys.readouterr().err


def test_the_summary_says_when_the_model_is_no_better_than_the_baseline_and_names_uncomputable_metrics():
    metrics = {
        **_metrics(0.476, 0.472, 0.11, 1.003, 0.835),
        "test_likes_spearman_within_account": math.nan,
        "baseline_likes_spearman_within_account": math.nan,
    }
    uncomputable = {
        "test_likes_spearman_within_account": "no account has 5 or more test posts (the most is 2)"
    }
    table = summary_table(
        TrainResult(metrics, "run", "1", "champion", "first", {}, "", "e", uncomputable=uncomputable)
    )
    assert (
        "WARNING: this model is no better than the account "
        "baseline (each account's mean) on likes (MAE 0.476 "
        "vs 0.472), comments (MAE 1.003 vs 0.835)"
    ) in table
    assert "nan" not in table
    assert re.search(r"^test_likes_spearman_within_account +n/a +n/a$", table, re.M)
    assert (
        "n/a test_likes_spearman_within_account: cannot be computed: no account has 5 or more test posts"
        in table
    )
    assert ("comments (MAE 1.003 vs 0.835): for those counts, each account's own average predicts as well"
            in table)
    assert training.baseline_verdict(_metrics(0.4, 0.47, 0.1))[0] is True


def test_the_verdict_says_which_counts_the_baseline_matches_before_those_the_model_beats():
    beats, verdict = training.baseline_verdict(_metrics(0.40, 0.47, 0.11, 1.003, 0.835))
    assert beats is False
    assert verdict == ("no better than the account baseline (each account's mean) on comments (MAE 1.003 vs "
                       "0.835): for that count, each account's own average predicts as well. It is better on "
                       "likes (MAE 0.400 vs 0.470)")
