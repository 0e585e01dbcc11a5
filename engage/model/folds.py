"""How the count model's stages split and shape their rows: cross-fitting folds, values within an account
(demeaned, graded for lambdarank, group sizes) and the split-conformal margin of the interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Fewest validation posts with a count from which alone the interval's margin is set (else the training
#: posts' out-of-fold errors join them).
MIN_CALIBRATION = 20

#: The difficulty model of the adaptive interval (`CountModel(interval_scale="adaptive")`): LightGBM of the
#: absolute error of the training posts' prediction (out-of-fold level + uplift) on the level's features,
#: fixed trees (no early stopping: the validation posts are the calibration set and must not shape it), few
#: leaves of many posts each (a spread is learned from far noisier labels than a mean). On fewer posts than
#: two leaves need it has no split: one scale for every post, which is the constant margin exactly.
SCALE_PARAMS: dict[str, Any] = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 7,
                                "min_child_samples": 50, "subsample": 0.8, "subsample_freq": 1,
                                "colsample_bytree": 0.8, "verbose": -1}

#: The least scale a post gets, as a share of the mean absolute residual of the training posts: a steady
#: account's predicted spread can come close to zero, and a margin divided by it would blow up its errors.
SCALE_FLOOR = 0.25


def conformal_margin(errors: np.ndarray, coverage: float) -> float:
    """Split-conformal half-width: the ceil((n + 1) * coverage)-th smallest of n absolute errors (Vovk et al.;
    Lei et al. 2018), so that a new exchangeable post falls within it with probability at least `coverage`;
    the largest error where n is too small for that rank, 0 without errors."""
    errors = np.sort(np.asarray(errors, dtype=float))
    if len(errors) == 0:
        return 0.0
    rank = min(int(np.ceil((len(errors) + 1) * coverage)), len(errors))
    return float(errors[rank - 1])


def normalized_errors(errors: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Absolute errors in units of each post's scale (normalized, "locally weighted" split-conformal: Lei et
    al. 2018, section 5.2; Papadopoulos et al. 2008): the margin set on them is multiplied back by the scale
    of each new post, so a steady account gets a narrow range and a volatile one a wide range, at the same
    coverage over all posts."""
    return np.abs(np.asarray(errors, dtype=float)) / np.asarray(scales, dtype=float)


def post_scales(raw: np.ndarray, floor: float, centre: float, exponent: float) -> np.ndarray:
    """Each post's interval scale from the scale model's predictions `raw`: at least `floor`, followed
    `exponent` of the way from the training posts' geometric mean `centre` (`scale_elasticity`). The one
    formula the calibration and the prediction both use."""
    return centre * (np.maximum(raw, floor) / centre) ** exponent


def scale_elasticity(errors: np.ndarray, scales: np.ndarray, z: float = 1.645) -> float:
    """How far the scale model's differences between posts hold on posts it never saw: the slope of
    log |error| on log scale over the calibration posts (1: errors grow in proportion to the scale; 0: the
    scale tells nothing), taken at its one-sided 95% lower bound (`z` standard errors under the estimate)
    and clipped to [0, 1], so that a scale the validation posts do not clearly confirm is not trusted
    (few posts: a wide bound, 0, the constant margin). The interval uses `scale ** elasticity`."""
    errors, scales = np.asarray(errors, dtype=float), np.asarray(scales, dtype=float)
    keep = ~(np.isnan(errors) | np.isnan(scales))
    x, y = np.log(scales[keep]), np.log(np.abs(errors[keep]) + 0.01)
    if len(x) < MIN_CALIBRATION or np.ptp(x) <= 0:
        return 0.0
    x = x - x.mean()
    slope = float(np.dot(x, y - y.mean()) / np.dot(x, x))
    spread = np.sum((y - y.mean() - slope * x) ** 2) / (len(x) - 2)
    return float(np.clip(slope - z * np.sqrt(spread / np.dot(x, x)), 0.0, 1.0))


def fold_rows(groups: np.ndarray, folds: int, seed: int, by: str = "account") -> list[np.ndarray]:
    """Row positions held out by each fold: whole accounts (shuffled by `seed`) when there are at least
    `folds` of them, else (or with `by="post"`) posts at random."""
    codes, uniques = pd.factorize(pd.Series(groups).astype(str))
    rng = np.random.default_rng(seed)
    if by == "account" and len(uniques) >= folds:
        which = (rng.permutation(len(uniques)) % folds)[codes]
    else:
        which = rng.permutation(len(groups)) % folds
    return [np.flatnonzero(which == k) for k in range(folds) if (which == k).any() and (which != k).any()]


def demeaned(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each value minus its group's mean: what is left to order within an account."""
    frame = pd.Series(np.asarray(values, dtype=float))
    return (frame - frame.groupby(pd.Series(groups).astype(str).to_numpy()).transform("mean")).to_numpy()


def relevance(values: np.ndarray, groups: np.ndarray, grades: int = 5) -> np.ndarray:
    """Integer relevance 0..grades-1 from each value's rank within its group (lambdarank's labels)."""
    ranks = pd.Series(values).groupby(pd.Series(groups).astype(str).to_numpy()).rank(
        pct=True, method="average")
    return np.minimum((ranks.to_numpy() * grades).astype(int), grades - 1)


def group_sizes(sorted_groups: np.ndarray) -> np.ndarray:
    """Sizes of the runs of equal groups in an array sorted by group."""
    values = pd.Series(sorted_groups).astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else np.zeros(0, dtype=int)
    return np.diff(np.r_[starts, len(values)])
