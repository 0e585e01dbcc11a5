"""Plots logged with every training run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

#: Points a scatter plot draws at most: a seeded sample
#: beyond it (200k test posts draw as slowly as they read).
MAX_POINTS = 20_000


def _thin(ok: np.ndarray) -> np.ndarray:
    """`ok` with at most MAX_POINTS True, chosen by a fixed seed, so large test sets plot in bounded time."""
    chosen = np.flatnonzero(ok)
    if len(chosen) > MAX_POINTS:
        keep = np.zeros_like(ok)
        keep[np.random.default_rng(0).choice(chosen, MAX_POINTS, replace=False)] = True
        return keep
    return ok


def feature_importance(model, names: list[str], title: str, top: int = 25) -> Figure:
    """Total gain per feature of a LightGBM model, largest first."""
    gain = model.booster_.feature_importance(importance_type="gain")
    order = np.argsort(gain)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(order) + 1.2))
    ax.barh([names[i] for i in order], gain[order], color="#4c72b0")
    ax.set_xlabel("total gain")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def shap_summary(model, features: pd.DataFrame, title: str, max_rows: int = 500) -> Figure:
    """SHAP beeswarm of the mean model on (a sample of) the test features."""
    import shap

    sample = features.sample(min(max_rows, len(features)),
                             random_state=0) if len(features) > max_rows else features
    values = shap.TreeExplainer(model.booster_).shap_values(sample)
    # summary_plot draws on pyplot's current figure: give it a new one, or it draws over (and returns)
    # whatever figure was made last (the feature importance chart, which then logged the SHAP beeswarm under
    # its name).
    fig = plt.figure()
    shap.summary_plot(values, sample, show=False, max_display=20, plot_size=(8, 7))
    if plt.gcf() is not fig:
        raise RuntimeError("shap.summary_plot drew on another figure than the one made for it")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, baseline: np.ndarray, name: str) -> Figure:
    ok = ~np.isnan(actual)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    lo, hi = float(np.nanmin(actual[ok])), float(np.nanmax(actual[ok]))
    ok = _thin(ok)
    for ax, values, label in ((axes[0], predicted, "model"), (axes[1], baseline, "account baseline")):
        ax.scatter(actual[ok], values[ok], s=8, alpha=0.5)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
        ax.set_xlabel(f"actual log1p {name}")
        ax.set_ylabel(f"predicted log1p {name}")
        ax.set_title(label)
    fig.suptitle(f"{name}: predicted vs actual (test)")
    fig.tight_layout()
    return fig


def residuals(actual: np.ndarray, predicted: np.ndarray, name: str) -> Figure:
    ok = ~np.isnan(actual)
    res = actual[ok] - predicted[ok]
    shown = _thin(ok)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axes[0].scatter(predicted[shown], actual[shown] - predicted[shown], s=8, alpha=0.5)
    axes[0].axhline(0, color="grey", lw=1)
    axes[0].set_xlabel(f"predicted log1p {name}")
    axes[0].set_ylabel("actual - predicted")
    axes[1].hist(res, bins=40, color="#4c72b0")
    axes[1].set_xlabel("residual (log1p)")
    fig.suptitle(f"{name}: residuals (test)")
    fig.tight_layout()
    return fig


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> Figure:
    ok = ~np.isnan(labels)
    labels, probabilities = labels[ok], probabilities[ok]
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    mean_p = [probabilities[which == b].mean() for b in range(bins) if (which == b).any()]
    rate = [labels[which == b].mean() for b in range(bins) if (which == b).any()]
    count = [(which == b).sum() for b in range(bins) if (which == b).any()]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, label="perfect")
    # Marker area by the bin's share of the posts: a fixed scale, whatever the test set's size.
    ax.scatter(mean_p, rate, s=[20 + 600 * c / max(len(labels), 1) for c in count],
               label="test bins (size = posts)")
    ax.plot(mean_p, rate, lw=1)
    ax.set_xlabel("predicted authenticity risk")
    ax.set_ylabel("observed rate")
    ax.set_title("authenticity risk calibration (test)")
    ax.legend()
    fig.tight_layout()
    return fig
