"""Evaluation on a time split: the split itself and the metrics every run logs under fixed names.

Split: each account's latest `test_fraction` of posts by time is the test set; the latest `valid_fraction`
of the remaining posts of each account is the validation slice for early stopping and calibration, so
validation always precedes the account's test period. When no account has enough posts for a per-account
split (e.g. one post per account), the latest posts overall are held out instead, and the split says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from engage.data.schema import post_id_order


@dataclass
class Split:
    train: np.ndarray  # positions used to fit
    valid: np.ndarray  # positions for early stopping / calibration (before the test period)
    test: np.ndarray  # held-out positions
    how: str
    times: np.ndarray  # posted_at of every position, to order any subset by time
    accounts: np.ndarray | None = None  # the account of every position (the count models' groups)


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
        train, valid, test = list(rest[: len(rest) - n_valid]), list(rest[len(rest) - n_valid:]), list(
            order[len(order) - n_test:])
        how = "latest posts overall (too few posts per account for a per-account split)"
    return Split(np.sort(np.array(train, dtype=int)), np.sort(np.array(valid, dtype=int)),
                 np.sort(np.array(test, dtype=int)), how,
                 times, posts["account"].astype(str).to_numpy())


def latest_share(rows: np.ndarray, times: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray]:
    """`rows` split by time: the earlier posts, and the latest
    `share` of them (at least one when there are two)."""
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


#: Test posts an account needs for its within-account Spearman to count.
WITHIN_ACCOUNT_MIN_POSTS = 5


def spearman_within_account(accounts: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
                            min_posts: int = WITHIN_ACCOUNT_MIN_POSTS) -> float:
    """Mean Spearman over accounts with at least `min_posts` test posts; NaN when no account has that many
    (it cannot be computed: training reports it as such, never as a figure)."""
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
    prefix: str, name: str, accounts: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
    account_baseline: np.ndarray
) -> dict[str, float]:
    """The four model metrics for a count target (log1p space); `prefix` is 'test' or 'baseline'."""
    ok = ~np.isnan(actual)
    accounts, actual, predicted, account_baseline = accounts[ok], actual[ok], predicted[ok], account_baseline[
        ok]
    out = {
        f"{prefix}_{name}_mae_log1p": float(np.mean(np.abs(actual - predicted))) if len(actual)
        else float("nan"),
        f"{prefix}_{name}_spearman": spearman(actual, predicted),
        f"{prefix}_{name}_spearman_within_account": spearman_within_account(accounts, actual, predicted),
    }
    if prefix == "test":
        out[f"test_{name}_spearman_relative"] = spearman(actual - account_baseline,
                                                         predicted - account_baseline)
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


def account_training_baseline(posts: pd.DataFrame, values: np.ndarray, fit_rows: np.ndarray,
                              rows: np.ndarray) -> np.ndarray:
    """Each row's account mean of `values` over its training posts (global training mean for new accounts)."""
    frame = pd.DataFrame({"account": posts["account"].to_numpy()[fit_rows], "v": values[fit_rows]})
    means = frame.groupby("account")["v"].mean()
    global_mean = float(np.nanmean(values[fit_rows])) if np.isfinite(values[fit_rows]).any() else float("nan")
    return posts["account"].iloc[rows].map(means).astype(float).fillna(global_mean).to_numpy()


#: The creator's question: of two posts of one account
#: published at most this many days apart, which does better?
DRAFT_PAIR_DAYS = 7.0


@dataclass
class DraftPairs:
    """Pairs of test posts of one account at most `DRAFT_PAIR_DAYS` apart (`earlier[k]` before `later[k]`),
    and the later posts' features scored as drafts beside the earlier (`FeaturePipeline.transform_as_drafts`:
    the history the earlier post had). The earlier post's own features are already those of a draft."""

    earlier: np.ndarray
    later: np.ndarray
    later_features: object = field(default=None, repr=False)  # pandas DataFrame, one row per pair


def draft_pairs(posts: pd.DataFrame, rows: np.ndarray,
                max_days: float = DRAFT_PAIR_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """(earlier, later): every pair of `rows` of one account posted at most `max_days` apart, ordered by
    (posted_at, post_id) as the history features order them (same-day posts by Instagram's id order)."""
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    times = posts["posted_at"].iloc[rows].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    ties = post_id_order(posts["post_id"])[rows] if "post_id" in posts.columns else np.arange(len(rows))
    accounts = pd.factorize(posts["account"].iloc[rows].astype(str))[0]
    order = np.lexsort((ties, times, accounts))
    rows, times, accounts = rows[order], times[order], accounts[order]
    limit = int(max_days * 86_400e9)
    earlier, later = [], []
    for i in range(len(rows)):
        j = i + 1
        while j < len(rows) and accounts[j] == accounts[i] and times[j] - times[i] <= limit:
            earlier.append(rows[i])
            later.append(rows[j])
            j += 1
    return np.asarray(earlier, dtype=np.int64), np.asarray(later, dtype=np.int64)


def pair_accuracy(actual_earlier: np.ndarray, actual_later: np.ndarray, predicted_earlier: np.ndarray,
                  predicted_later: np.ndarray) -> tuple[float, int]:
    """(share of pairs ordered right, pairs counted): pairs with equal or unknown actual values, or equal
    predictions, are dropped (a model that cannot tell two drafts apart has no say on them)."""
    actual = np.asarray(actual_later, dtype=float) - np.asarray(actual_earlier, dtype=float)
    predicted = np.asarray(predicted_later, dtype=float) - np.asarray(predicted_earlier, dtype=float)
    counted = (actual != 0) & (predicted != 0) & ~np.isnan(actual) & ~np.isnan(predicted)
    n = int(counted.sum())
    if not n:
        return float("nan"), 0
    return float(np.mean(np.sign(actual[counted]) == np.sign(predicted[counted]))), n


def uncomputable_metrics(metrics: dict[str, float], test: np.ndarray, posts: pd.DataFrame) -> dict[str, str]:
    """Each metric that came out NaN, with the reason in words
    (docs/model.md, "Metrics that cannot be computed")."""
    per_account = posts["account"].iloc[test].value_counts()
    reasons = {
        "spearman_within_account": "no account has "
        f"{WITHIN_ACCOUNT_MIN_POSTS} or more test posts (the most is "
                                   f"{int(per_account.max()) if len(per_account) else 0})",
        "spearman": "fewer than 3 test posts with a known count",
        "spearman_relative": "fewer than 3 test posts with a known count",
        "mae_log1p": "no test post with a known count",
        "interval_coverage": "no test post with a known count",
        "risk_auc": "the test posts hold one class only",
        "risk_ece": "no test post with a known label",
    }
    out = {}
    for key, value in metrics.items():
        if not np.isfinite(value):
            kind = next((k for k in sorted(reasons, key=len, reverse=True) if key.endswith(k)), None)
            out[key] = reasons.get(
                kind, "cannot be computed on this split") if kind else "cannot be computed on this split"
    return out
