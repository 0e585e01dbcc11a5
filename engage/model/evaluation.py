"""Evaluation on a time split: the split itself and the metrics every run logs under fixed names.

Split: each account's latest `test_fraction` of posts by time is the test set; the latest `valid_fraction`
of the remaining posts of each account is the validation slice for early stopping and calibration, so
validation always precedes the account's test period. When no account has enough posts for a per-account
split (e.g. one post per account), the latest posts overall are held out instead, and the split says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score


@dataclass
class Split:
    train: np.ndarray  # positions used to fit
    valid: np.ndarray  # positions for early stopping / calibration (before the test period)
    test: np.ndarray  # held-out positions
    how: str
    times: np.ndarray  # posted_at of every position, to order any subset by time


def _latest(order: np.ndarray, fraction: float) -> int:
    return int(np.floor(len(order) * fraction + 0.5)) if len(order) >= 2 else 0


def time_split(posts: pd.DataFrame, test_fraction: float, valid_fraction: float) -> Split:
    """Per-account latest posts -> test; latest of the rest -> valid; the rest -> train."""
    train, valid, test = [], [], []
    times = posts["posted_at"].to_numpy()
    for _, group in posts.groupby("account", sort=True):
        order = group.index.to_numpy()[np.argsort(times[group.index.to_numpy()], kind="stable")]
        n_test = _latest(order, test_fraction)
        rest, held = order[: len(order) - n_test], order[len(order) - n_test:]
        n_valid = _latest(rest, valid_fraction)
        train.extend(rest[: len(rest) - n_valid])
        valid.extend(rest[len(rest) - n_valid:])
        test.extend(held)
    how = "each account's latest posts"
    if len(test) < max(10, 0.05 * len(posts)) or len(valid) < 5:
        order = np.argsort(times, kind="stable")
        n_test = int(len(order) * test_fraction)
        rest = order[: len(order) - n_test]
        n_valid = int(len(rest) * valid_fraction)
        train, valid, test = list(rest[: len(rest) - n_valid]), list(rest[len(rest) - n_valid:]), list(order[len(order) - n_test:])
        how = "latest posts overall (too few posts per account for a per-account split)"
    return Split(np.sort(np.array(train, dtype=int)), np.sort(np.array(valid, dtype=int)), np.sort(np.array(test, dtype=int)), how,
                 times)


def latest_share(rows: np.ndarray, times: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """`rows` split by time: the earlier posts, and the latest `share` of them (at least one when there are two)."""
    order = np.asarray(rows)[np.argsort(times[rows], kind="stable")]
    cut = int(len(order) * (1 - share))
    return np.sort(order[:cut]), np.sort(order[cut:])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation; 0.0 when either side is constant (no ranking skill), NaN with < 3 pairs."""
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if len(a) < 3:
        return float("nan")
    if np.all(a == a[0]) or np.all(b == b[0]):
        return 0.0
    return float(spearmanr(a, b).statistic)


def spearman_within_account(accounts: np.ndarray, actual: np.ndarray, predicted: np.ndarray, min_posts: int = 5) -> float:
    """Mean Spearman over accounts with at least `min_posts` test posts."""
    values = []
    # Each account's rows from one stable sort (accounts in np.unique's order, rows in table order): a mask
    # per account made this (test rows x accounts), 42 s of a 100k-post run's evaluation.
    ok = ~np.isnan(actual) & ~np.isnan(predicted)
    _, inverse = np.unique(np.asarray(accounts)[ok], return_inverse=True)
    kept = np.flatnonzero(ok)
    order = kept[np.argsort(inverse, kind="stable")]
    bounds = np.flatnonzero(np.r_[True, np.diff(np.sort(inverse, kind="stable")) != 0, True])
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if stop - start >= min_posts:
            rows = order[start:stop]
            values.append(spearman(actual[rows], predicted[rows]))
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def count_metrics(
    prefix: str, name: str, accounts: np.ndarray, actual: np.ndarray, predicted: np.ndarray, account_baseline: np.ndarray
) -> dict[str, float]:
    """The four model metrics for a count target (log1p space); `prefix` is 'test' or 'baseline'."""
    ok = ~np.isnan(actual)
    accounts, actual, predicted, account_baseline = accounts[ok], actual[ok], predicted[ok], account_baseline[ok]
    out = {
        f"{prefix}_{name}_mae_log1p": float(np.mean(np.abs(actual - predicted))) if len(actual) else float("nan"),
        f"{prefix}_{name}_spearman": spearman(actual, predicted),
        f"{prefix}_{name}_spearman_within_account": spearman_within_account(accounts, actual, predicted),
    }
    if prefix == "test":
        out[f"test_{name}_spearman_relative"] = spearman(actual - account_baseline, predicted - account_baseline)
    return out


def interval_coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    ok = ~np.isnan(actual)
    return float(np.mean((actual[ok] >= low[ok]) & (actual[ok] <= high[ok]))) if ok.any() else float("nan")


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-width bins: the mean |observed rate - mean probability|, weighted by bin size."""
    ok = ~np.isnan(labels)
    labels, probabilities = labels[ok], probabilities[ok]
    if not len(labels):
        return float("nan")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(labels[mask].mean() - probabilities[mask].mean())
    return float(total)


def risk_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    ok = ~np.isnan(labels)
    if len(set(labels[ok])) < 2:
        return float("nan")
    return float(roc_auc_score(labels[ok], probabilities[ok]))


def account_training_baseline(posts: pd.DataFrame, values: np.ndarray, fit_rows: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Each row's account mean of `values` over its training posts (global training mean for new accounts)."""
    frame = pd.DataFrame({"account": posts["account"].to_numpy()[fit_rows], "v": values[fit_rows]})
    means = frame.groupby("account")["v"].mean()
    global_mean = float(np.nanmean(values[fit_rows])) if np.isfinite(values[fit_rows]).any() else float("nan")
    return posts["account"].iloc[rows].map(means).astype(float).fillna(global_mean).to_numpy()
