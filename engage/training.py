"""The story of a training run, top to bottom: data, vectors, split, features, targets, evaluation,
bundle, MLflow run and registry.

`train(settings)` is what `python train.py` calls. Every run logs the same metric names (see
`engage.model.evaluation`) so runs compare in the MLflow UI, the resolved config and the embedder ids as
params, plots and a data fingerprint as artifacts, and the whole pipeline as one pyfunc model registered
as `engage`. Registration is the very last step: a run killed before it leaves no model version behind.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from engage.config import Settings, flat_params, settings_to_yaml
from engage.data import load_posts
from engage.data.sources import options_from_settings
from engage.engine import Engine
from engage.engines import open_engine
from engage.errors import ConfigError, EngageError
from engage.features.local_engine import LOCAL
from engage.features.pipeline import FeaturePipeline
from engage.model import evaluation as ev
from engage.model import plots
from engage.model.bundle import EngageModel, select_context
from engage.model.explain import compute_norms
from engage.model.feed import account_feeds
from engage.model.plans import FitPlan
from engage.model.targets import TARGETS
from engage.outcomes.retrain import TRAINED_POSTS_ARTIFACT, trained_posts_text
from engage.promote import baseline_verdict, choose_alias, choose_data_alias, data_alias
from engage.stages import Stages
from engage.tracking import artifact_location, prepare_tracking_store

log = logging.getLogger(__name__)
#: Draft pairs scored per chunk in the evaluation (bounds the copies of their histories; see `draft_pairs`).
DRAFT_PAIR_CHUNK = 20_000

@dataclass
class TrainResult:
    metrics: dict[str, float]
    run_id: str | None
    model_version: str | None
    alias: str | None
    alias_reason: str
    skipped_targets: dict[str, str] = field(default_factory=dict)
    split_how: str = ""
    embedder: str = ""
    export_dir: str | None = None
    tracking_uri: str = ""
    # seconds_<stage> -> seconds, as the run logs them
    seconds: dict[str, float] = field(default_factory=dict)
    # stage -> the process's peak RSS in it (Linux)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # stage -> user + system CPU seconds
    name: str = "engage"  # the registered model
    data_alias: str | None = None  # data-<fingerprint> when this version is the best on its data, else None
    data_alias_reason: str = ""
    uncomputable: dict[str, str] = field(default_factory=dict)  # metric -> why it could not be computed
    experiment_id: str = ""  # the MLflow experiment of the run


def load_training_posts(settings: Settings, *, progress: bool = True) -> pd.DataFrame:
    """The posts of `settings.data` (`data.source` from the registry, given the `data` settings its options
    declare), with the outcome store's recorded posts added when data.outcomes is true."""
    data = settings.data
    posts = load_posts(data.source, data.path, progress=progress, **options_from_settings(data))
    if data.outcomes:
        from engage.outcomes.retrain import add_recorded_posts

        posts = add_recorded_posts(posts, settings)
    return posts


#: How many skipped files the terminal names; the run's skipped_files.txt artifact lists them all.
SHOWN_SKIPPED_FILES = 5


def print_report(report: Any) -> None:
    print(f"      {report.summary()}")
    for file, reason in report.skipped_files[:SHOWN_SKIPPED_FILES]:
        print(f"      skipped {file}: {reason}")
    if len(report.skipped_files) > SHOWN_SKIPPED_FILES:
        print(
            f"      ... and {len(report.skipped_files) - SHOWN_SKIPPED_FILES} more (all listed in the run's "
              "skipped_files.txt; data.strict=true makes them an error)")


def fingerprint(posts: pd.DataFrame) -> dict[str, Any]:
    """Rows, accounts, date range and a content hash (image paths excluded: they differ between machines)."""
    columns = [c for c in posts.columns if c != "image"]
    hashed = pd.util.hash_pandas_object(posts[columns].astype(str), index=False).to_numpy()
    return {
        "rows": int(len(posts)),
        "accounts": int(posts["account"].nunique()),
        "first_post": posts["posted_at"].min().isoformat(),
        "last_post": posts["posted_at"].max().isoformat(),
        "sha256": hashlib.sha256(hashed.tobytes()).hexdigest(),
    }


#: Data settings that only mean something for one source; the others' are left out of a run's params.
_SOURCE_PARAMS = {"data.demo.": ("demo",), "data.account": ("insights",), "data.images_dir": ("table",),
                  "data.date_format": ("table", "insights"), "data.strict": ("instaloader", "insights")}
#: The MLflow 3 experiment tag that makes the UI open an experiment on its runs (not the GenAI traces view).
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def run_params(settings: Settings) -> dict[str, Any]:
    """The resolved config as MLflow params, without the settings of data sources the run did not use."""
    source = settings.data.source

    def used(key: str) -> bool:
        return all(source in sources for prefix, sources in _SOURCE_PARAMS.items() if key.startswith(prefix))

    params = {k: v for k, v in flat_params(settings).items() if used(k)}
    if source == "demo":
        params.pop("data.path", None)  # the demo is generated into data.demo.out_dir
    return params


def run_name(settings: Settings, started: datetime) -> str:
    """What the run is: its data and when it started, e.g.
    'instaloader celeb_dump_200 2026-12-06 20:15 UTC'."""
    data = settings.data
    if data.source == "demo":
        what = (f"demo {data.demo.n_accounts} accounts x "
                f"{data.demo.posts_per_account} posts (seed {data.demo.seed})")
    else:
        what = f"{data.source} {Path(data.path or '').name or data.path}"
    return f"{what} {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _labels(posts: pd.DataFrame, features: pd.DataFrame, chosen: list[str] | None = None
            ) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Labels per target (those `chosen`, default all), the label
    descriptions, and the targets skipped with the reason."""
    unknown = sorted(set(chosen or []) - set(TARGETS))
    if unknown:
        raise ConfigError("train.targets names unknown target(s) "
                          f"{', '.join(unknown)}; the registry has {', '.join(TARGETS)}")
    labels, described, skipped = {}, {}, {}
    for name, target in TARGETS.items():
        if chosen is not None and name not in chosen:
            skipped[name] = "not in train.targets"
            continue
        y, described[name], why = target.labels(posts, features)
        if why is not None:
            skipped[name] = why
            continue
        labels[name] = y
    return labels, described, skipped


@dataclass
class Featurized:
    """A run's posts made ready to fit: the fitted pipeline, the vectors, the split, the feature table and the
    labels of the targets trained (those skipped, with the reason)."""

    posts: pd.DataFrame
    pipeline: FeaturePipeline
    vectors: Any
    split: ev.Split
    features: pd.DataFrame
    labels: dict[str, np.ndarray]
    described: dict[str, str]
    skipped: dict[str, str]


def featurize(settings: Settings, posts: pd.DataFrame, engine: Engine = LOCAL, *, progress: bool = True,
              stages: Stages | None = None) -> Featurized:
    """Embed (through the cache), split by time, fit the pipeline on the training rows, compute every feature
    and label: what `train` does before fitting, and what the real-data benchmark fits its ablations on."""
    if stages is not None:
        stages.start("embed", "Embedding photos and captions (cached by content hash)")
    pipeline = FeaturePipeline.from_settings(settings)
    vectors = pipeline.embed(posts, progress=progress, engine=engine)
    print(f"      image embedder: {pipeline.image_embedder.id}; text embedder: {pipeline.text_embedder.id}")
    if stages is not None:
        stages.start("features", "Splitting by time and computing features")
    split = ev.time_split(posts, settings.train.test_fraction, settings.train.valid_fraction)
    pipeline.fit(vectors, rows=split.train)
    features = pipeline.transform(posts, vectors, engine=engine)
    labels, described, skipped = _labels(posts, features, settings.train.targets)
    for name, why in skipped.items():
        print(f"      skipping target {name}: {why}")
    print(f"      {len(split.train)} train / {len(split.valid)} "
          f"validation / {len(split.test)} test posts ({split.how})")
    return Featurized(posts, pipeline, vectors, split, features, labels, described, skipped)


def fit_targets(settings: Settings, features: pd.DataFrame, labels: dict[str, np.ndarray], split: ev.Split,
                engine: Engine = LOCAL) -> dict[str, Any]:
    """One model per target; their LightGBM estimators are handed to the engine in one batch per stage (the
    count models have two `FitPlan`s: the account's level, then the draft's uplift on its out-of-fold
    residuals; on Ray, one Ray Train run per stage for all targets)."""
    from engage.features.families import FEATURE_FAMILIES

    train_settings = settings.train
    unknown = sorted(set(train_settings.drop_features) - set(FEATURE_FAMILIES))
    if unknown:
        raise ConfigError(f"train.drop_features names unknown famil(ies) {', '.join(unknown)}; "
                          f"the families are {', '.join(FEATURE_FAMILIES)}")
    if train_settings.uplift_objective == "lambdarank" and engine.name != LOCAL.name:
        raise ConfigError(
            "train.uplift_objective=lambdarank needs whole accounts in one place: it runs on the local "
            "engine only (runtime.engine=local), or use train.uplift_objective=regression on Ray")
    options = {"folds": train_settings.level_folds, "folds_by": train_settings.level_folds_by,
               "objective": train_settings.uplift_objective, "drop": tuple(train_settings.drop_features),
               "level_params": train_settings.level, "level_start": train_settings.level_start,
               "interval_scale": train_settings.interval_scale}
    accounts = split.accounts if split.accounts is not None else np.arange(len(features))
    pending: dict[str, tuple[Any, FitPlan]] = {}
    seed = train_settings.seed
    frames: dict[bytes, pd.DataFrame] = {}

    def rows_of(rows: np.ndarray) -> pd.DataFrame:
        """`features.iloc[rows]`, one copy shared by every target with the same rows (the targets whose labels
        are known on the same posts: at a million posts each copy is most of a gigabyte)."""
        key = hashlib.sha256(np.ascontiguousarray(rows, dtype=np.int64).tobytes()).digest()
        if key not in frames:
            frames[key] = features.iloc[rows]
        return frames[key]

    for name, y in labels.items():
        train = split.train[~np.isnan(y[split.train])]
        valid = split.valid[~np.isnan(y[split.valid])]
        if len(valid) < 5:  # tiny data sets: early-stop on the latest of the training posts
            train, valid = ev.latest_share(train, split.times, 0.15)
        model = TARGETS[name].make_model(train_settings.lightgbm, train_settings.interval, seed, **options)
        pending[name] = (model,
                         model.lightgbm_jobs(rows_of(train), y[train], rows_of(valid), y[valid],
                                             accounts[train], accounts[valid]))
    frames.clear()  # the plans hold what they need
    done: dict[str, Any] = {}
    while pending:  # one batch per stage, until no model has a plan left
        fitted = iter(engine.fit_lightgbm([job for _, plan in pending.values() for job in plan.jobs]))
        following: dict[str, tuple[Any, FitPlan]] = {}
        for name, (model, plan) in pending.items():
            model = model.finish([next(fitted) for _ in plan.jobs], plan)
            if plan.next is not None:
                following[name] = (model, plan.next)
            else:
                done[name] = model
        pending = following
    return {name: done[name] for name in labels}


def draft_pairs(pipeline: FeaturePipeline, posts: pd.DataFrame, vectors: Any, features: pd.DataFrame,
                rows: np.ndarray) -> ev.DraftPairs:
    """The pairs of `rows` the creator's question asks about, the later post of each scored as a draft beside
    the earlier (the history the earlier post had: `FeaturePipeline.transform_as_drafts`)."""
    earlier, later = ev.draft_pairs(posts, rows)
    # In chunks: each pair copies its account's last posts and their vectors (13 rows of 256 floats and
    # more a pair), gigabytes at once for the pairs of a million posts; a row's features never depend on
    # the other rows of its chunk.
    parts = [pipeline.transform_as_drafts(posts, vectors, later[start:start + DRAFT_PAIR_CHUNK],
                                          earlier[start:start + DRAFT_PAIR_CHUNK], features)
             for start in range(0, max(len(later), 1), DRAFT_PAIR_CHUNK)]
    return ev.DraftPairs(earlier, later, pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])


def evaluate(posts: pd.DataFrame, features: pd.DataFrame, labels: dict[str, np.ndarray],
             models: dict[str, Any],
             split: ev.Split,
             pairs: ev.DraftPairs | None = None) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """Test metrics next to the account-baseline metrics, with the exact names every run logs; with `pairs`
    (`draft_pairs` of the test posts), each count target's draft-pair accuracy."""
    metrics: dict[str, float] = {}
    preds: dict[str, dict[str, np.ndarray]] = {}
    for name, model in models.items():
        metrics_of_target, preds[name] = TARGETS[name].evaluate(model, features, labels[name], posts, split,
                                                                pairs)
        metrics.update(metrics_of_target)
    metrics["n_train"] = float(len(split.train) + len(split.valid))
    metrics["n_test"] = float(len(split.test))
    metrics["n_accounts"] = float(posts["account"].nunique())
    return metrics, preds


def _log_plots(mlflow: Any, models: dict[str, Any], features: pd.DataFrame,
               preds: dict[str, dict[str, np.ndarray]], test: np.ndarray) -> None:
    for name, model in models.items():
        # Each model sees its own subset (plans.model_columns);
        # a count model's level and uplift, their own parts.
        if hasattr(model, "uplift_"):
            # The draft's uplift under the target's own name (what a creator changes), the level beside it.
            owners = [(name, model.uplift_, model.uplift_names_),
                      (f"{name}_level", model.level_, model.level_names_)]
        else:
            owners = [(name, model.model_, model.feature_names_)]
        figures = {}
        for label, booster_owner, names in owners:
            if booster_owner is None:
                continue
            figures[f"plots/feature_importance_{label}.png"] = plots.feature_importance(
                booster_owner, names, f"{label}: feature importance")
            try:
                figures[f"plots/shap_summary_{label}.png"] = plots.shap_summary(
                    booster_owner, features.iloc[test][names],
                    f"{label}: SHAP summary (test)")
            except Exception as e:  # SHAP is an explanation aid; a failure there must not lose the run
                log.warning("SHAP summary for %s failed: %s", label, e)
        figures.update(TARGETS[name].figures(preds[name]))
        for path, fig in figures.items():
            mlflow.log_figure(fig, path)
            plt.close(fig)


def _outcome_promotion(settings: Settings, client: Any, posts: pd.DataFrame, features: pd.DataFrame,
                       models: dict[str, Any], split: ev.Split, alias: str, why: str,
                       metrics: dict[str, float]) -> tuple[str, str]:
    """With recorded outcomes in the data, the fingerprint always differs from the champion's: the decision is
    made on the latest posts neither model trained on (engage.outcomes.retrain), logged with its figures."""
    import mlflow

    from engage.outcomes.retrain import compare_with_champion

    comparison = compare_with_champion(settings, client, posts, features, models, split.test)
    if comparison is None:
        return alias, why
    mlflow.log_metrics(comparison.metrics)
    metrics.update(comparison.metrics)
    return comparison.alias, comparison.reason


def train(settings: Settings, *, export_dir: str | None = None, progress: bool = True) -> TrainResult:
    """Train, evaluate, log to MLflow and register. See the module docstring for the story.

    `runtime.engine` says where the heavy steps run (`engage.engines`); MLflow is always logged from here,
    the driver, so a Ray run looks like a local one in the MLflow UI.
    """
    prepare_tracking_store(settings.tracking.uri)  # fail (or create the store) before any training work
    with open_engine(settings) as engine:
        return _train(settings, engine, export_dir=export_dir, progress=progress)


def _train(settings: Settings, engine: Engine, *, export_dir: str | None, progress: bool) -> TrainResult:
    import mlflow
    from mlflow.tracking import MlflowClient

    from engage.scoring.pyfunc import (
        EngagePyfunc,
        input_example,
        logged_example,
        pip_requirements,
        predict_frame,
        signature,
    )
    from engage.scoring.scorer import Scorer

    # the MLflow run is dated from here, so its duration covers the whole training
    started = datetime.now(UTC)
    stages = Stages(total=8)
    stages.start("load", f"Loading posts ({settings.data.source})")
    posts = load_training_posts(settings, progress=progress)
    report = posts.attrs.pop("report", None)
    if report is not None:
        print_report(report)
    if len(posts) < 30:
        raise EngageError(f"only {len(posts)} posts: too few to train and evaluate; engage needs at least 30")

    data = featurize(settings, posts, engine, progress=progress, stages=stages)
    pipeline, vectors, split, features = data.pipeline, data.vectors, data.split, data.features
    labels, described, skipped = data.labels, data.described, data.skipped

    stages.start("fit", f"Training LightGBM models ({engine.name}): {', '.join(labels)}")
    models = fit_targets(settings, features, labels, split, engine)

    stages.start("evaluate", "Evaluating on the held-out latest posts (and their pairs, scored as drafts)")
    pairs = draft_pairs(pipeline, posts, vectors, features, split.test)
    metrics, preds = evaluate(posts, features, labels, models, split, pairs)
    del pairs  # its feature table: one row per test pair (hundreds of MB at a million posts)

    stages.start("bundle", "Building the model bundle")
    context_rows = select_context(posts, settings.features.history_posts,
                                  settings.features.duplicate_window_hours)
    data_print = fingerprint(posts)
    info = {
        "name": settings.tracking.registered_model, "trained_at": datetime.now(UTC).isoformat(),
        "labels": described, "skipped_targets": skipped, "data": data_print, "metrics": metrics,
        "image_embedder": pipeline.image_embedder_id_, "text_embedder": pipeline.text_embedder_id_,
    }
    fit_rows = np.concatenate([split.train, split.valid])
    model = EngageModel(settings, pipeline, models, posts.iloc[context_rows], vectors.take(context_rows),
                        compute_norms(features.iloc[fit_rows]), info, account_feeds(posts, progress=progress))
    # The bundle holds its context's vectors (each account's last posts: at a million posts nearly all
    # of them, a GB of caption vectors); the table's own are not needed again.
    del data, vectors

    stages.start("mlflow",
                 f"Logging to MLflow ({settings.tracking.uri}, experiment '{settings.tracking.experiment}')")
    mlflow.set_tracking_uri(settings.tracking.uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.tracking.experiment)
    if experiment is None:
        experiment_id = client.create_experiment(settings.tracking.experiment,
                                                 artifact_location=artifact_location(
            settings.tracking.uri), tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    else:
        experiment_id = experiment.experiment_id
        if EXPERIMENT_KIND_TAG not in experiment.tags:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    mlflow.set_experiment(experiment_id=experiment_id)
    # Created with the time training started (mlflow.start_run would date it from now, after the work).
    created = client.create_run(experiment_id, start_time=int(started.timestamp() * 1000),
                                run_name=run_name(settings, started))
    with mlflow.start_run(run_id=created.info.run_id) as run:
        run_id = run.info.run_id
        model.info["run_id"] = run_id
        mlflow.log_params({k: str(v)[:500] for k, v in run_params(settings).items()})
        mlflow.log_params({"image_embedder": pipeline.image_embedder_id_,
                           "text_embedder": pipeline.text_embedder_id_,
                           "n_features": features.shape[1], "split": split.how})
        mlflow.set_tags({"data_sha256": data_print["sha256"],
                         "risk_label": described.get("authenticity_risk", ""),
                         "skipped_targets": "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "none"})
        beats, verdict = baseline_verdict(metrics)
        uncomputable = ev.uncomputable_metrics(metrics, split.test, posts)
        mlflow.set_tags({"beats_account_baseline": {True: "yes", False: "no", None: "unknown"}[beats],
                         "account_baseline_verdict": verdict[:5000],
            "uncomputable_metrics": "; ".join(f"{k}: {v}" for k, v in uncomputable.items()) or "none"})
        # A metric that cannot be computed is left out (MLflow
        # would chart NaN as a point) and named in the tag.
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_text(settings_to_yaml(settings), "config.yaml")
        mlflow.log_text("\n".join(features.columns), "features.txt")
        mlflow.log_dict(data_print, "data_fingerprint.json")
        # for outcome comparisons
        mlflow.log_text(trained_posts_text(posts, fit_rows), TRAINED_POSTS_ARTIFACT)
        if report is not None and report.skipped_files:
            mlflow.log_text(report.skipped_files_text(), "skipped_files.txt")
            mlflow.log_metric("skipped_files", len(report.skipped_files))
        stages.done()
        plots_started = time.perf_counter()
        _log_plots(mlflow, models, features, preds, split.test)
        # SHAP and figures, apart from MLflow I/O
        stages.seconds["plots"] = time.perf_counter() - plots_started
        stages.start("log_model", "Logging the model and registering it")
        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = model.save(Path(tmp) / "bundle")
            example = input_example(posts.iloc[split.test[:1]])
            info_logged = mlflow.pyfunc.log_model(
                name="model", python_model=EngagePyfunc(), artifacts={"bundle": str(bundle_dir)},
                signature=signature(predict_frame(Scorer(model), example)),
                input_example=logged_example(model, example),
                pip_requirements=pip_requirements(),
            )
        # Registration last: a run killed before this line leaves no model version.
        name = settings.tracking.registered_model
        version = mlflow.register_model(info_logged.model_uri, name)
        alias, why = choose_alias(client, name, version.version, metrics, data_print["sha256"])
        # recorded posts change the data: compared on posts neither model trained on
        if settings.data.outcomes:
            alias, why = _outcome_promotion(settings, client, posts, features, models, split, alias, why,
                                            metrics)
        takes_data_alias, data_why = choose_data_alias(client, name, metrics, data_print["sha256"])
        client.set_registered_model_alias(name, alias, version.version)
        if takes_data_alias:
            client.set_registered_model_alias(name, data_alias(data_print["sha256"]), version.version)
        mlflow.set_tags({"model_version": version.version, "model_alias": alias, "model_alias_reason": why,
                         "data_alias": data_alias(data_print["sha256"]) if takes_data_alias else "none",
                         "data_alias_reason": data_why})
        stages.done()
        seconds = stages.metrics()
        mlflow.log_metrics(seconds)
    model.info["version"] = f"{settings.tracking.registered_model}/{version.version}"
    exported = None
    export_to = export_dir or settings.train.export_dir
    if export_to:
        exported = str(model.save(export_to))
    print(f"      done in {seconds['seconds_total']:.0f} s (seconds per stage: {stages.summary()})")
    return TrainResult(metrics, run_id, str(version.version), alias, why, skipped, split.how,
        pipeline.image_embedder_id_, exported, settings.tracking.uri, seconds, dict(stages.peak_rss_mb),
                       name=name, data_alias=data_alias(data_print["sha256"]) if takes_data_alias else None,
                       cpu_seconds=dict(stages.cpu_seconds),
        data_alias_reason=data_why, uncomputable=uncomputable, experiment_id=str(experiment_id))
