"""The terminal summary of a training run (what `python train.py` prints last): each metric beside its
baselines, what could not be computed, the model version and its alias, and the commands that come next
(serve it, promote it, open the MLflow UI)."""

from __future__ import annotations

import numpy as np

from engage.config import TrackingSettings
from engage.model.targets import TARGETS
from engage.promote import baseline_verdict
from engage.training import TrainResult


def serve_command(result: TrainResult, model: str) -> str:
    """The exact `python serve.py` call that serves `model` from this run's tracking store."""
    default = TrackingSettings().uri
    store = "" if result.tracking_uri == default else f" --tracking-uri {result.tracking_uri}"
    return f"python serve.py --model {model}{store}"


def summary_table(result: TrainResult) -> str:
    """Each metric next to its baseline, whether the model beats the account baseline, metrics that could not
    be computed and why, then the run, the model version,
    how to serve or promote it and how to open the UI."""
    m = result.metrics

    def cell(value: float | None) -> str:
        if value is None:
            return ""
        return f"{value:>10.3f}" if np.isfinite(value) else f"{'n/a':>10}"

    lines = [f"{'metric':<46}{'model':>10}{'account':>10}{'trailing':>10}"]
    for target in TARGETS.values():
        for key, value, base, trailing in target.summary_rows(m):
            lines.append(f"{key:<46}{cell(value)}"
                f"{cell(base) if base is not None or trailing is None else ' ' * 10}{cell(trailing)}")
    lines.append("(account: the account's mean over its training "
                 "posts; trailing: its mean over the last posts before each)")
    for key, why in result.uncomputable.items():
        lines.append(f"n/a {key}: cannot be computed: {why}")
    lines.append(f"{'posts (train / test / accounts)':<46}{int(m['n_train'])} "
                 f"/ {int(m['n_test'])} / {int(m['n_accounts'])}")
    for name, why in result.skipped_targets.items():
        lines.append(f"skipped {name}: {why}")
    beats, verdict = baseline_verdict(m)
    if beats is False:
        lines.append(f"WARNING: this model is {verdict} (run tag beats_account_baseline=no)")
    elif beats:
        lines.append(f"the model {verdict}")
    lines += [
        f"embedder: {result.embedder}",
        f"run id: {result.run_id}",
        f"model: {result.name} version {result.model_version} "
        f"-> alias '{result.alias}' ({result.alias_reason})",
    ]
    if result.data_alias:
        lines.append(f"       and alias '{result.data_alias}' (the "
                     f"best version on this data: {result.data_alias_reason})")
    if result.alias != "champion":
        lines.append(
            f"serve this version: {serve_command(result, f'models:/{result.name}/{result.model_version}')}")
        if result.data_alias:
            lines.append("   or the best on this data: "
                         f"{serve_command(result, f'models:/{result.name}@{result.data_alias}')}")
        store = ("" if result.tracking_uri == TrackingSettings().uri
                 else f" --tracking-uri {result.tracking_uri}")
        lines.append(f"make it the champion (what python serve.py serves): python -m engage.promote "
                     f"{result.model_version}{store}")
    if result.export_dir:
        lines.append(f"exported bundle: {result.export_dir}")
    lines.append(f"open the MLflow UI: mlflow ui --backend-store-uri {result.tracking_uri} --port 5000")
    if result.experiment_id:
        # MLflow 3's UI opens an experiment on its GenAI overview until told otherwise (a toggle it remembers
        # per browser, not the experiment's kind tag): this link opens the training runs.
        lines.append(f"   then the runs: http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs"
                     "?workflowType=machine_learning")
    return "\n".join(lines)
