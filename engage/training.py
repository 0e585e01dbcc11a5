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
import math
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
from engage.engine import Engine, LightGBMJob
from engage.engines import open_engine
from engage.errors import ConfigError, EngageError
from engage.features.local_engine import LOCAL
from engage.features.pipeline import FeaturePipeline
from engage.files import staged_write
from engage.model import evaluation as ev
from engage.model import plots
from engage.model.bundle import EngageModel, select_context
from engage.model.explain import compute_norms
from engage.model.feed import account_feeds
from engage.model.targets import TARGETS
from engage.outcomes.retrain import TRAINED_POSTS_ARTIFACT, trained_posts_text

log = logging.getLogger(__name__)

#: The metric every new model version is compared on before it may become champion.
CHAMPION_METRIC = "test_likes_spearman_relative"


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
    seconds: dict[str, float] = field(default_factory=dict)  # seconds_<stage> -> seconds, as the run logs them
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # stage -> the process's peak RSS in it (Linux)


def artifact_location(tracking_uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database file (MLflow's default is ./mlruns in whatever
    directory train.py runs from, which mixes the artifacts of different stores)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return (Path(tracking_uri[len(prefix):]).resolve().parent / "mlruns").as_uri()


def prepare_tracking_store(tracking_uri: str) -> None:
    """Make sure a SQLite tracking store opens, creating a new one atomically.

    MLflow creates a store by applying some 50 schema migrations one by one; a run killed half-way leaves
    a store that no later run (nor `mlflow db upgrade`) can open. So a new store is built under a temporary
    name beside the target and renamed into place once complete, before any training work. An existing
    store that cannot be opened is an error that names the file to delete.
    """
    from mlflow.tracking import MlflowClient

    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return
    path = Path(tracking_uri[len(prefix):])
    if path.exists():
        try:
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
        except Exception as e:  # SQLAlchemy/Alembic raise many types for a damaged schema
            raise EngageError(
                f"the MLflow tracking store {path} cannot be opened ({type(e).__name__}: {str(e).splitlines()[0][:200]}). If a run was "
                f"killed while the store was being created, delete {path} and run again, or point tracking.uri elsewhere"
            ) from e
        return
    with staged_write(path, directory=False) as staging:
        MlflowClient(tracking_uri=f"{prefix}{staging.path}").search_experiments(max_results=1)


class Stages:
    """Prints each stage of a run as `[n/total] text` and measures its seconds (`seconds[name]`).

    A stage lasts until the next one starts or `done()` is called; the seconds are printed and logged
    as MLflow metrics `seconds_<name>`, so that a slow run says where its time went.
    """

    def __init__(self, total: int):
        self.total = total
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}  # per stage, where the platform tells (benchmarks/scale.py)
        self._number = 0
        self._current: tuple[str, float] | None = None
        self._started = time.perf_counter()

    def start(self, name: str, text: str) -> None:
        self.done()
        self._number += 1
        print(f"[{self._number}/{self.total}] {text}", flush=True)
        _reset_peak_rss()
        self._current = (name, time.perf_counter())

    def done(self) -> None:
        if self._current is not None:
            name, began = self._current
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
            peak = _peak_rss_mb()
            if peak is not None:
                self.peak_rss_mb[name] = max(self.peak_rss_mb.get(name, 0.0), peak)
            self._current = None

    def metrics(self) -> dict[str, float]:
        # To the millisecond, stages down and the total up, so the stages never add up to more than the total
        # (rounding each to the nearest could: 19.799 against 19.798).
        total = time.perf_counter() - self._started
        return {f"seconds_{name}": math.floor(value * 1000) / 1000 for name, value in self.seconds.items()} | {
            "seconds_total": math.ceil(total * 1000) / 1000}

    def summary(self) -> str:
        return ", ".join(f"{name} {value:.1f}" for name, value in self.seconds.items())


def _reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM); elsewhere nothing."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float | None:
    """The process's peak resident memory since the last reset, in MB (None where /proc is not there)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def load_training_posts(settings: Settings, *, progress: bool = True) -> pd.DataFrame:
    """The posts of `settings.data`, with the outcome store's recorded posts added when data.outcomes is true."""
    posts = _source_posts(settings, progress=progress)
    if settings.data.outcomes:
        from engage.outcomes.retrain import add_recorded_posts

        posts = add_recorded_posts(posts, settings)
    return posts


def _source_posts(settings: Settings, *, progress: bool = True) -> pd.DataFrame:
    data = settings.data
    if data.source == "demo":
        options = data.demo.model_dump()
        out_dir = options.pop("out_dir")
        return load_posts("demo", data.path or out_dir, progress=progress, **options)
    if data.source == "insights":
        return load_posts("insights", data.path, account=data.account, strict=data.strict)
    if data.source == "table":
        return load_posts("table", data.path, images_dir=data.images_dir, columns=data.columns, account=data.account)
    return load_posts(data.source, data.path, images_dir=data.images_dir, strict=data.strict, progress=progress)


#: How many skipped files the terminal names; the run's skipped_files.txt artifact lists them all.
SHOWN_SKIPPED_FILES = 5


def print_report(report: Any) -> None:
    print(f"      {report.summary()}")
    for file, reason in report.skipped_files[:SHOWN_SKIPPED_FILES]:
        print(f"      skipped {file}: {reason}")
    if len(report.skipped_files) > SHOWN_SKIPPED_FILES:
        print(f"      ... and {len(report.skipped_files) - SHOWN_SKIPPED_FILES} more (all listed in the run's "
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


def _labels(posts: pd.DataFrame, features: pd.DataFrame, chosen: list[str] | None = None
            ) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Labels per target (those `chosen`, default all), the label descriptions, and the targets skipped with the reason."""
    unknown = sorted(set(chosen or []) - set(TARGETS))
    if unknown:
        raise ConfigError(f"train.targets names unknown target(s) {', '.join(unknown)}; the registry has {', '.join(TARGETS)}")
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


def fit_targets(settings: Settings, features: pd.DataFrame, labels: dict[str, np.ndarray], split: ev.Split,
                engine: Engine = LOCAL) -> dict[str, Any]:
    """One model per target; their LightGBM estimators are handed to the engine in one batch (on Ray:
    one Ray Train run for all seven instead of seven runs)."""
    pending: dict[str, tuple[Any, list[LightGBMJob]]] = {}
    seed = settings.train.seed
    for name, y in labels.items():
        train = split.train[~np.isnan(y[split.train])]
        valid = split.valid[~np.isnan(y[split.valid])]
        if len(valid) < 5:  # tiny data sets: early-stop on the latest of the training posts
            train, valid = ev.latest_share(train, split.times, 0.15)
        model = TARGETS[name].make_model(settings.train.lightgbm, settings.train.interval, seed)
        pending[name] = (model, model.lightgbm_jobs(features.iloc[train], y[train], features.iloc[valid], y[valid]))
    fitted = iter(engine.fit_lightgbm([job for _, jobs in pending.values() for job in jobs]))
    return {name: model.finish([next(fitted) for _ in jobs], jobs) for name, (model, jobs) in pending.items()}


def evaluate(posts: pd.DataFrame, features: pd.DataFrame, labels: dict[str, np.ndarray], models: dict[str, Any],
             split: ev.Split) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """Test metrics next to the account-baseline metrics, with the exact names every run logs."""
    metrics: dict[str, float] = {}
    preds: dict[str, dict[str, np.ndarray]] = {}
    for name, model in models.items():
        metrics_of_target, preds[name] = TARGETS[name].evaluate(model, features, labels[name], posts, split)
        metrics.update(metrics_of_target)
    metrics["n_train"] = float(len(split.train) + len(split.valid))
    metrics["n_test"] = float(len(split.test))
    metrics["n_accounts"] = float(posts["account"].nunique())
    return metrics, preds


def _log_plots(mlflow: Any, models: dict[str, Any], features: pd.DataFrame, preds: dict[str, dict[str, np.ndarray]], test: np.ndarray) -> None:
    for name, model in models.items():
        booster_owner = model.mean_ if hasattr(model, "mean_") else model.model_
        names = model.feature_names_  # each model sees its own subset (targets.model_columns)
        figures = {f"plots/feature_importance_{name}.png": plots.feature_importance(booster_owner, names, f"{name}: feature importance")}
        try:
            figures[f"plots/shap_summary_{name}.png"] = plots.shap_summary(booster_owner, features.iloc[test][names], f"{name}: SHAP summary (test)")
        except Exception as e:  # SHAP is an explanation aid; a failure there must not lose the run
            log.warning("SHAP summary for %s failed: %s", name, e)
        figures.update(TARGETS[name].figures(preds[name]))
        for path, fig in figures.items():
            mlflow.log_figure(fig, path)
            plt.close(fig)


def _no_champion(error: Exception) -> bool:
    """Whether MLflow's error says that the alias (or the registered model) does not exist."""
    from mlflow.exceptions import MlflowException

    if not isinstance(error, MlflowException):
        return False
    # A missing alias is INVALID_PARAMETER_VALUE ("alias champion not found"); a missing model, RESOURCE_DOES_NOT_EXIST.
    return error.error_code == "RESOURCE_DOES_NOT_EXIST" or (
        error.error_code == "INVALID_PARAMETER_VALUE" and "not found" in str(error)
    )


def choose_alias(client: Any, name: str, version: str, metrics: dict[str, float], data_hash: str) -> tuple[str, str]:
    """champion when none exists or when this version beats it on CHAMPION_METRIC over the same data."""
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except Exception as e:  # only "there is no champion" promotes; a registry that fails to answer does not
        if _no_champion(e):
            return "champion", "no champion existed"
        return "challenger", (f"the champion could not be read ({type(e).__name__}: {str(e)[:200]}); registered as "
                              "challenger: compare and promote by hand (set the champion alias) once the registry answers")
    champion_run = client.get_run(champion.run_id) if champion.run_id else None
    if champion_run is None:
        return "champion", "the champion has no run to compare with"
    old_hash = champion_run.data.tags.get("data_sha256")
    old = champion_run.data.metrics.get(CHAMPION_METRIC)
    new = metrics.get(CHAMPION_METRIC, float("nan"))
    if old_hash != data_hash:
        return "challenger", f"champion v{champion.version} was evaluated on other data (fingerprint differs); compare on the same data before promoting"
    if old is None or np.isnan(old) or (not np.isnan(new) and new > old):
        return "champion", f"{CHAMPION_METRIC} {new:.4f} beats champion v{champion.version} ({old})"
    return "challenger", f"{CHAMPION_METRIC} {new:.4f} does not beat champion v{champion.version} ({old:.4f})"


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
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    from engage.scoring.pyfunc import EngagePyfunc, input_example, pip_requirements, predict_frame
    from engage.scoring.scorer import Scorer

    stages = Stages(total=8)
    stages.start("load", f"Loading posts ({settings.data.source})")
    posts = load_training_posts(settings, progress=progress)
    report = posts.attrs.pop("report", None)
    if report is not None:
        print_report(report)
    if len(posts) < 30:
        raise EngageError(f"only {len(posts)} posts: too few to train and evaluate; engage needs at least 30")

    stages.start("embed", "Embedding photos and captions (cached by content hash)")
    pipeline = FeaturePipeline(settings)
    vectors = pipeline.embed(posts, progress=progress, engine=engine)
    print(f"      image embedder: {pipeline.image_embedder.id}; text embedder: {pipeline.text_embedder.id}")

    stages.start("features", "Splitting by time and computing features")
    split = ev.time_split(posts, settings.train.test_fraction, settings.train.valid_fraction)
    pipeline.fit(vectors, rows=split.train)
    features = pipeline.transform(posts, vectors, engine=engine)
    labels, described, skipped = _labels(posts, features, settings.train.targets)
    for name, why in skipped.items():
        print(f"      skipping target {name}: {why}")
    print(f"      {len(split.train)} train / {len(split.valid)} validation / {len(split.test)} test posts ({split.how})")

    stages.start("fit", f"Training LightGBM models ({engine.name}): {', '.join(labels)}")
    models = fit_targets(settings, features, labels, split, engine)

    stages.start("evaluate", "Evaluating on the held-out latest posts")
    metrics, preds = evaluate(posts, features, labels, models, split)

    stages.start("bundle", "Building the model bundle")
    context_rows = select_context(posts, settings.features.history_posts, settings.features.duplicate_window_hours)
    data_print = fingerprint(posts)
    info = {
        "name": settings.tracking.registered_model, "trained_at": datetime.now(UTC).isoformat(),
        "labels": described, "skipped_targets": skipped, "data": data_print, "metrics": metrics,
        "image_embedder": pipeline.image_embedder_id_, "text_embedder": pipeline.text_embedder_id_,
    }
    fit_rows = np.concatenate([split.train, split.valid])
    model = EngageModel(settings, pipeline, models, posts.iloc[context_rows], vectors.take(context_rows),
                        compute_norms(features.iloc[fit_rows]), info, account_feeds(posts, progress=progress))

    stages.start("mlflow", f"Logging to MLflow ({settings.tracking.uri}, experiment '{settings.tracking.experiment}')")
    mlflow.set_tracking_uri(settings.tracking.uri)
    client = MlflowClient()
    if client.get_experiment_by_name(settings.tracking.experiment) is None:
        client.create_experiment(settings.tracking.experiment, artifact_location=artifact_location(settings.tracking.uri))
    mlflow.set_experiment(settings.tracking.experiment)
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        model.info["run_id"] = run_id
        mlflow.log_params({k: str(v)[:500] for k, v in flat_params(settings).items()})
        mlflow.log_params({"image_embedder": pipeline.image_embedder_id_, "text_embedder": pipeline.text_embedder_id_,
                           "n_features": features.shape[1], "split": split.how})
        mlflow.set_tags({"data_sha256": data_print["sha256"], "risk_label": described.get("authenticity_risk", ""),
                         "skipped_targets": "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "none"})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_text(settings_to_yaml(settings), "config.yaml")
        mlflow.log_text("\n".join(features.columns), "features.txt")
        mlflow.log_dict(data_print, "data_fingerprint.json")
        mlflow.log_text(trained_posts_text(posts, fit_rows), TRAINED_POSTS_ARTIFACT)  # for outcome comparisons
        if report is not None and report.skipped_files:
            mlflow.log_text(report.skipped_files_text(), "skipped_files.txt")
            mlflow.log_metric("skipped_files", len(report.skipped_files))
        stages.done()
        plots_started = time.perf_counter()
        _log_plots(mlflow, models, features, preds, split.test)
        stages.seconds["plots"] = time.perf_counter() - plots_started  # SHAP and figures, apart from MLflow I/O
        stages.start("log_model", "Logging the model and registering it")
        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = model.save(Path(tmp) / "bundle")
            example = input_example(posts.iloc[split.test[:1]])
            signature = infer_signature(example, predict_frame(Scorer(model), example))
            info_logged = mlflow.pyfunc.log_model(
                name="model", python_model=EngagePyfunc(), artifacts={"bundle": str(bundle_dir)},
                signature=signature, input_example=example, pip_requirements=pip_requirements(),
            )
        # Registration last: a run killed before this line leaves no model version.
        version = mlflow.register_model(info_logged.model_uri, settings.tracking.registered_model)
        alias, why = choose_alias(client, settings.tracking.registered_model, version.version, metrics, data_print["sha256"])
        if settings.data.outcomes:  # recorded posts change the data: compared on posts neither model trained on
            alias, why = _outcome_promotion(settings, client, posts, features, models, split, alias, why, metrics)
        client.set_registered_model_alias(settings.tracking.registered_model, alias, version.version)
        mlflow.set_tags({"model_version": version.version, "model_alias": alias, "model_alias_reason": why})
        stages.done()
        seconds = stages.metrics()
        mlflow.log_metrics(seconds)
    model.info["version"] = f"{settings.tracking.registered_model}/{version.version}"
    exported = None
    if export_dir or settings.train.export_dir:
        exported = str(model.save(export_dir or settings.train.export_dir))
    print(f"      done in {seconds['seconds_total']:.0f} s (seconds per stage: {stages.summary()})")
    return TrainResult(metrics, run_id, str(version.version), alias, why, skipped, split.how,
                       pipeline.image_embedder_id_, exported, settings.tracking.uri, seconds, dict(stages.peak_rss_mb))


def summary_table(result: TrainResult) -> str:
    """Each metric next to its baseline, then the run, the model version and how to open the UI."""
    m = result.metrics
    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:>10.3f}"

    lines = [f"{'metric':<46}{'model':>10}{'account':>10}{'trailing':>10}"]
    for target in TARGETS.values():
        for key, value, base, trailing in target.summary_rows(m):
            lines.append(f"{key:<46}{value:>10.3f}{cell(base) if base is not None or trailing is None else ' ' * 10}{cell(trailing)}")
    lines.append("(account: the account's mean over its training posts; trailing: its mean over the last posts before each)")
    lines.append(f"{'posts (train / test / accounts)':<46}{int(m['n_train'])} / {int(m['n_test'])} / {int(m['n_accounts'])}")
    for name, why in result.skipped_targets.items():
        lines.append(f"skipped {name}: {why}")
    lines += [
        f"embedder: {result.embedder}",
        f"run id: {result.run_id}",
        f"model: engage version {result.model_version} -> alias '{result.alias}' ({result.alias_reason})",
    ]
    if result.export_dir:
        lines.append(f"exported bundle: {result.export_dir}")
    lines.append(f"open the MLflow UI: mlflow ui --backend-store-uri {result.tracking_uri} --port 5000")
    return "\n".join(lines)
