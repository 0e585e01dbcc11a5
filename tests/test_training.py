"""End to end on the smoke demo: one real training run (shared fixture), its MLflow record and its bundle."""

from __future__ import annotations

import math

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from engage.features.local_engine import LOCAL
from engage.features.pipeline import FeaturePipeline
from engage.model.bundle import EngageModel
from engage.model.draft import Draft
from engage.scoring.scorer import Scorer
from engage.training import choose_alias, load_training_posts

METRICS = [
    f"{prefix}_{target}_{kind}"
    for target in ("likes", "comments")
    for prefix, kinds in (("test", ("mae_log1p", "spearman", "spearman_within_account", "spearman_relative")),
                          ("baseline", ("mae_log1p", "spearman", "spearman_within_account")))
    for kind in kinds
] + ["test_likes_interval_coverage", "test_comments_interval_coverage", "test_risk_auc", "test_risk_ece",
     "n_train", "n_test", "n_accounts"]


def test_training_logs_every_metric_plot_and_artifact_and_registers_a_champion(trained, smoke_settings):
    result, _ = trained
    mlflow.set_tracking_uri(smoke_settings.tracking.uri)
    client = MlflowClient()
    run = client.get_run(result.run_id)
    for key in METRICS:
        assert key in run.data.metrics, key
        assert math.isfinite(run.data.metrics[key]), key
    assert run.data.params["image_embedder"] == "efficientnet:lite0:imagenet"
    assert run.data.params["train.lightgbm.num_leaves"] == str(smoke_settings.train.lightgbm.num_leaves)
    artifacts = {a.path for a in client.list_artifacts(result.run_id)} | {
        a.path for a in client.list_artifacts(result.run_id, "plots")}
    for path in ("config.yaml", "features.txt", "data_fingerprint.json", "plots/risk_calibration.png",
                 "plots/shap_summary_likes.png", "plots/feature_importance_likes.png",
                 "plots/predicted_vs_actual_likes.png", "plots/residuals_comments.png"):
        assert path in artifacts, path
    champion = client.get_model_version_by_alias("engage", "champion")
    assert str(champion.version) == result.model_version and result.alias == "champion"
    # Where the time went: every stage's seconds, logged and returned, adding up to at most the total.
    stages = ("load", "embed", "features", "fit", "evaluate", "bundle", "mlflow", "plots", "log_model")
    for name in stages:
        assert run.data.metrics[f"seconds_{name}"] >= 0, name
    assert sum(result.seconds[f"seconds_{name}"] for name in stages) <= result.seconds["seconds_total"] + 1e-6
    # The run is named after its data and start, dated from the start of training, in an experiment the UI
    # opens on its runs (MLflow 3's experiment kind), with only the active data source's settings.
    assert run.info.run_name.startswith("demo 10 accounts x 30 posts (seed 7) 20")
    assert (run.info.end_time - run.info.start_time) / 1000 >= result.seconds["seconds_total"] - 1
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "data.demo.n_accounts" in run.data.params and "data.account" not in run.data.params
    # Whether the model beats the account baseline is a tag; the version holds its data's alias.
    m = result.metrics
    beats = all(m[k] < m[k.replace("test_", "baseline_",
                                   1)] for k in m if k.startswith("test_") and k.endswith("_mae_log1p"))
    assert run.data.tags["beats_account_baseline"] == ("yes" if beats else "no")
    assert result.data_alias == f"data-{run.data.tags['data_sha256'][:12]}"
    assert str(client.get_model_version_by_alias("engage", result.data_alias).version) == result.model_version


def test_a_run_on_other_data_logs_no_demo_parameters():
    from engage.config import load_settings
    from engage.training import run_name, run_params

    settings = load_settings(None,
                             ["data.source=instaloader", "data.path=../shared/data/real/celeb_dump_200"])
    params = run_params(settings)
    assert params["data.path"] == "../shared/data/real/celeb_dump_200" and params["data.strict"] is False
    assert not [k for k in params if k.startswith("data.demo.") or k in ("data.account", "data.date_format")]
    from datetime import UTC, datetime
    assert run_name(settings, datetime(2026, 12, 6, 20, 15,
                                       tzinfo=UTC)) == "instaloader celeb_dump_200 2026-12-06 20:15 UTC"


def test_smoke_model_ranks_posts_within_accounts_and_detects_felt_fake(trained):
    # ~350 posts are too few to beat the account baseline on MAE reliably (the full demo does: see
    # docs/results.md); the post-level ranking skill and the felt-fake detection must show even here.
    metrics = trained[0].metrics
    assert metrics["test_likes_spearman_relative"] > 0.05
    assert metrics["test_likes_spearman_within_account"] > 0.05
    assert metrics["test_risk_auc"] > 0.75
    assert 0.5 <= metrics["test_likes_interval_coverage"] <= 0.97


def test_a_worse_version_becomes_challenger_and_other_data_is_never_compared(trained, smoke_settings):
    result, _ = trained
    mlflow.set_tracking_uri(smoke_settings.tracking.uri)
    client = MlflowClient()
    data_hash = client.get_run(result.run_id).data.tags["data_sha256"]
    worse = {**result.metrics,
             "test_likes_spearman_relative": result.metrics["test_likes_spearman_relative"] - 0.5}
    alias, why = choose_alias(client, "engage", "99", worse, data_hash)
    assert alias == "challenger" and "does not beat" in why
    better = {**result.metrics,
              "test_likes_spearman_relative": result.metrics["test_likes_spearman_relative"] + 0.5}
    assert choose_alias(client, "engage", "99", better, data_hash)[0] == "champion"
    alias, why = choose_alias(client, "engage", "99", better, "another-data-set")
    assert alias == "challenger" and "fingerprint" in why


def test_exported_bundle_and_registered_model_score_the_same_draft_identically(trained, smoke_settings):
    _, export = trained
    from_dir = EngageModel.load(export)
    from_registry = EngageModel.from_uri("models:/engage@champion", smoke_settings.tracking.uri)
    account = from_dir.context_posts["account"].iloc[0]
    draft = Draft(account=account, caption="Morning light on the balcony, slow coffee and a new book #sunday",
                  posted_at="2030-01-01T09:00:00Z")
    a, b = Scorer(from_dir).score(draft), Scorer(from_registry).score(draft)
    assert a.likes == b.likes and a.authenticity_risk == b.authenticity_risk
    assert a.likes.low <= a.likes.expected <= a.likes.high
    assert 0.0 <= a.authenticity_risk <= 1.0
    assert all(f.code != "unknown_account" for f in a.flags)
    assert a.factors and all(isinstance(f.feature, str) for f in a.factors)


def test_a_second_feature_build_reads_every_vector_from_the_cache(trained, smoke_settings, monkeypatch):
    posts = load_training_posts(smoke_settings)
    first = FeaturePipeline.from_settings(smoke_settings).embed(posts, progress=False)
    pipeline = FeaturePipeline.from_settings(smoke_settings)

    def no_compute(*args, **kwargs):
        raise AssertionError("an embedding was recomputed")

    monkeypatch.setattr(pipeline.image_embedder, "embed_paths", no_compute)
    monkeypatch.setattr(pipeline.text_embedder, "embed", no_compute)
    monkeypatch.setattr(LOCAL, "measure_quality", no_compute)  # the local engine measures photo quality
    second = pipeline.embed(posts, progress=False)
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.caption, second.caption)
    np.testing.assert_array_equal(first.quality, second.quality)


def test_features_of_a_subset_of_rows_equal_the_full_computation(trained, smoke_settings):
    model = EngageModel.load(trained[1])
    posts = model.context_posts
    full = model.pipeline.transform(posts, model.context_vectors)
    rows = np.array([3, 17, len(posts) - 1])
    part = model.pipeline.transform(posts, model.context_vectors, rows=rows)
    np.testing.assert_allclose(part.to_numpy(), full.iloc[rows].to_numpy(), rtol=1e-5, atol=1e-6,
                               equal_nan=True)


def test_a_model_of_more_stored_posts_than_mlflow_should_load_twice_logs_no_input_example(trained):
    import copy

    from engage.scoring.pyfunc import EXAMPLE_CONTEXT_LIMIT, input_example, logged_example

    model = EngageModel.load(trained[1])
    posts = model.context_posts
    example = input_example(posts.iloc[[len(posts) // 2]].assign(image=None))
    assert logged_example(model, example) is example
    many = copy.copy(model)
    many.context_posts = posts.iloc[np.zeros(EXAMPLE_CONTEXT_LIMIT + 1, dtype=int)]
    assert logged_example(many, example) is None
    assert model.context_posts is posts  # the trained model is not changed


def test_stages_time_each_stage_until_the_next_begins(capsys, monkeypatch):
    from engage import training

    clock = iter([0.0, 1.0, 3.5, 4.0, 10.0, 12.0])
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    stages = training.Stages(total=2)  # the run starts at 0.0
    stages.start("load", "Loading posts")  # load starts at 1.0
    stages.start("fit", "Training")  # load ends at 3.5, fit starts at 4.0
    stages.done()  # fit ends at 10.0
    stages.done()  # nothing running: the clock is not read
    assert stages.seconds == {"load": 2.5, "fit": 6.0}
    assert stages.metrics() == {"seconds_load": 2.5, "seconds_fit": 6.0, "seconds_total": 12.0}
    assert capsys.readouterr().out == "[1/2] Loading posts\n[2/2] Training\n"


def test_stage_cpu_seconds_count_this_process_and_its_waited_children(monkeypatch):
    """CPU seconds per stage: user + system of the process and of the children it waited for (a shared
    machine's honest cost next to wall seconds)."""
    import os

    from engage import stages as stages_module

    # (user, system, children_user, children_system, elapsed) at: load starts, load ends, fit starts, fit ends
    times = iter([os.times_result((1.0, 0.5, 0.0, 0.0, 0.0)), os.times_result((3.0, 1.0, 0.0, 0.0, 0.0)),
                  os.times_result((3.0, 1.0, 0.0, 0.0, 0.0)), os.times_result((4.0, 1.5, 2.0, 0.25, 0.0))])
    monkeypatch.setattr(stages_module.os, "times", lambda: next(times))
    stages = stages_module.Stages(total=2)
    stages.start("load", "Loading posts")
    stages.start("fit", "Training")
    stages.done()
    assert stages.cpu_seconds == {"load": 2.5, "fit": 3.75}


def test_stage_seconds_never_add_up_to_more_than_the_total(monkeypatch):
    """Rounded each to the nearest millisecond, two stages of 0.6 ms in a run of 1.2 ms made 2 ms against a
    total of 1 ms (a CI run failed the same way: 19.799 against 19.798)."""
    from engage import training

    # started, a begins, a ends = b begins, b ends, total
    clock = iter([0.0, 0.0, 0.0006, 0.0006, 0.0012, 0.0012])
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    stages = training.Stages(total=2)
    stages.start("a", "first")
    stages.start("b", "second")
    stages.done()
    metrics = stages.metrics()
    assert metrics == {"seconds_a": 0.0, "seconds_b": 0.0, "seconds_total": 0.002}
    assert metrics["seconds_a"] + metrics["seconds_b"] <= metrics["seconds_total"]
