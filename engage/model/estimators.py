"""The estimators behind the targets (engage/model/targets.py is the registry that makes them).

* `CountModel`: expected log1p count with an interval, learned as the residual over a reference level
  (the account's trailing baseline, else a followers prior, else the global level); three LightGBM
  regressors (mean, low and high quantiles).
* `RiskModel`: a LightGBM classifier of the probability that the audience finds a post inauthentic,
  calibrated (Platt) on the validation slice.

Both follow the scikit-learn contract: `__init__` stores its parameters, `fit` sets every learned attribute
(ending in `_`), and predicting before `fit` raises `NotFittedError`. Their LightGBM estimators are handed
to an engine as `engage.engine.LightGBMJob`s (`lightgbm_jobs`, then `finish`), so the local and the Ray
engine fit the same estimators with the same call (`engage.engine.fit_estimator`).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from engage.config import LightGBMSettings
from engage.data.schema import INSIGHT_COUNTS
from engage.engine import LightGBMJob, fit_locally
from engage.errors import NotFittedError

log = logging.getLogger(__name__)


class ModelSpec(Protocol):
    """What an estimator needs to know of its target (a `targets.Target` satisfies it)."""

    @property
    def name(self) -> str: ...

    @property
    def baseline_feature(self) -> str | None: ...

    @property
    def monotone(self) -> tuple[tuple[str, int], ...]: ...


@dataclass(frozen=True)
class _Spec:
    name: str
    baseline_feature: str | None = None
    monotone: tuple[tuple[str, int], ...] = ()


#: A risk model built without its target: no monotone directions, no insight-count levels.
_PLAIN_RISK = _Spec("authenticity_risk")


def model_columns(target: ModelSpec, columns: pd.Index | list[str]) -> list[str]:
    """The features a target's model sees: all of them except the other insight counts' trailing levels.

    Each count model starts from its own trailing level; the likes, comments and risk models keep the
    features they had before the insight counts. The seven extra levels move together with the likes level,
    and on small data they let the trees fit noise (smoke demo, likes relative Spearman: 0.014 with them).
    """
    others = {f"{count}_baseline" for count in INSIGHT_COUNTS} - {target.baseline_feature}
    return [c for c in columns if c not in others]


def _lgb_params(params: LightGBMSettings, seed: int, target: ModelSpec | None = None, columns: list[str] | None = None) -> dict:
    out = params.model_dump()
    out.pop("early_stopping_rounds")
    out = {**out, "random_state": seed, "verbose": -1}
    if target is not None and target.monotone and columns is not None:
        directions = dict(target.monotone)
        out["monotone_constraints"] = [directions.get(c, 0) for c in columns]
        out["monotone_constraints_method"] = "advanced"
    return out


#: Fits a list of jobs and returns their fitted estimators in order (`fit_locally`, or an engine's).
FitLightGBM = Callable[[list[LightGBMJob]], list[lgb.LGBMModel]]


#: Rows up to which a prediction runs in one thread: waking LightGBM's OpenMP threads costs more than a
#: few rows of trees (0.2 ms against 0.05 ms for one row), and a request scores one draft.
_SINGLE_THREAD_ROWS = 64
_FEATURE_NAMES: weakref.WeakKeyDictionary[lgb.Booster, tuple[str, ...]] = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=256)
def _positions(columns: tuple[str, ...], names: tuple[str, ...]) -> np.ndarray | None:
    """Where each of a model's features sits in a table's columns (None: the same columns in order)."""
    if columns == names:
        return None
    where = {column: k for k, column in enumerate(columns)}
    missing = [name for name in names if name not in where]
    if missing:
        raise ValueError(f"features missing for the model: {', '.join(missing[:5])}")
    return np.array([where[name] for name in names], dtype=np.intp)


def _predict(model: lgb.LGBMModel, features: pd.DataFrame, **kwargs: bool) -> np.ndarray:
    """Booster prediction on the feature matrix, its columns picked by position.

    One draft is scored by some thirty LightGBM calls (three per count target, risk, contributions): the
    scikit-learn wrapper's DataFrame checks and pandas column selection cost a millisecond each, the trees
    a twentieth of that, so the matrix is taken once and the column positions are cached per column list.
    """
    booster = model.booster_
    names = _FEATURE_NAMES.get(booster)
    if names is None:
        names = _FEATURE_NAMES[booster] = tuple(booster.feature_name())
    matrix = features.to_numpy(dtype=np.float64)
    positions = _positions(tuple(features.columns.tolist()), names)  # tolist: iterating an Arrow index is slow
    if positions is not None:
        matrix = matrix[:, positions]
    threads = 1 if len(matrix) <= _SINGLE_THREAD_ROWS else 0  # 0: LightGBM's default (all cores)
    return booster.predict(matrix, num_threads=threads, **kwargs)


class CountModel:
    """Expected log1p count with an interval, as residual over a reference level (scikit-learn style)."""

    def __init__(self, target: ModelSpec, params: LightGBMSettings, interval: float = 0.8, seed: int = 0):
        self.target = target
        self.params = params
        self.interval = interval
        self.seed = seed

    def reference(self, features: pd.DataFrame) -> np.ndarray:
        """The account's trailing baseline where known, else the followers prior, else the global level."""
        ref = features[self.target.baseline_feature].to_numpy(dtype=float).copy()
        followers = np.log1p(features["followers"].to_numpy(dtype=float))
        prior = self.prior_intercept_ + self.prior_slope_ * followers
        prior = np.where(np.isnan(prior), self.global_level_, prior)
        return np.where(np.isnan(ref), prior, ref)

    def _fit_prior(self, features: pd.DataFrame, y: np.ndarray) -> None:
        followers = np.log1p(features["followers"].to_numpy(dtype=float))
        ok = ~np.isnan(followers)
        self.global_level_ = float(np.median(y))
        if ok.sum() >= 10 and np.std(followers[ok]) > 0:
            self.prior_slope_, self.prior_intercept_ = (float(v) for v in np.polyfit(followers[ok], y[ok], 1))
        else:
            self.prior_slope_, self.prior_intercept_ = 0.0, self.global_level_

    def lightgbm_jobs(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray
                      ) -> list[LightGBMJob]:
        """Fit the reference level on all training rows; the mean, low and high estimators left to fit."""
        columns = model_columns(self.target, train.columns)
        train, valid = train[columns], valid[columns]
        self._fit_prior(train, y_train)
        base = _lgb_params(self.params, self.seed, self.target, list(train.columns))
        residual_train = y_train - self.reference(train)
        residual_valid = y_valid - self.reference(valid)
        alpha = (1 - self.interval) / 2
        # LightGBM's quantile objective cannot take monotone constraints; the interval models go without.
        plain = {k: v for k, v in base.items() if not k.startswith("monotone")}
        estimators = [lgb.LGBMRegressor(objective="l2", **base),
                      lgb.LGBMRegressor(objective="quantile", alpha=alpha, **plain),
                      lgb.LGBMRegressor(objective="quantile", alpha=1 - alpha, **plain)]
        self.feature_names_ = list(train.columns)
        return [LightGBMJob(e, train, residual_train, valid, residual_valid, self.params.early_stopping_rounds)
                for e in estimators]

    def finish(self, fitted: list[lgb.LGBMModel], jobs: list[LightGBMJob]) -> CountModel:
        self.mean_, self.low_, self.high_ = fitted
        return self

    def fit(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray, *,
            fit_lightgbm: FitLightGBM = fit_locally) -> CountModel:
        """`fit_lightgbm` fits the LightGBM estimators (here by default; the Ray engine passes its own)."""
        jobs = self.lightgbm_jobs(train, y_train, valid, y_valid)
        return self.finish(fit_lightgbm(jobs), jobs)

    def predict_log1p(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        if not hasattr(self, "mean_"):
            raise NotFittedError(f"{self.target.name} model is not fitted: call fit(...) first")
        ref = self.reference(features)
        expected = ref + _predict(self.mean_, features)
        low = ref + _predict(self.low_, features)
        high = ref + _predict(self.high_, features)
        # Quantile models are fitted separately and can cross; the interval always contains the estimate.
        return {"expected": expected, "low": np.minimum(low, expected), "high": np.maximum(high, expected)}

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions (log1p units) of the mean model; last column is the bias."""
        return _predict(self.mean_, features, pred_contrib=True)


class RiskModel:
    """Calibrated probability that the audience finds a post inauthentic."""

    def __init__(self, params: LightGBMSettings, seed: int = 0, target: ModelSpec | None = None):
        self.params = params
        self.seed = seed
        self.target = target  # its monotone directions and feature subset; None: the plain risk model

    @property
    def _spec(self) -> ModelSpec:
        # Risk models pickled before `target` was a parameter are read back without it.
        return getattr(self, "target", None) or _PLAIN_RISK

    def lightgbm_jobs(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray
                      ) -> list[LightGBMJob]:
        columns = model_columns(self._spec, train.columns)
        train, valid = train[columns], valid[columns]
        base = _lgb_params(self.params, self.seed, self._spec, list(train.columns))
        positives = max(int(y_train.sum()), 1)
        classifier = lgb.LGBMClassifier(objective="binary", scale_pos_weight=max((len(y_train) - positives) / positives, 1.0) ** 0.5, **base)
        rounds = self.params.early_stopping_rounds if len(set(y_valid)) > 1 else None
        self.feature_names_ = list(train.columns)
        return [LightGBMJob(classifier, train, y_train, valid, y_valid, rounds)]

    def finish(self, fitted: list[lgb.LGBMModel], jobs: list[LightGBMJob]) -> RiskModel:
        """Calibrate the fitted classifier on the validation slice."""
        (self.model_,), valid, y_valid = fitted, jobs[0].valid, jobs[0].y_valid
        raw = self._raw(valid)
        self.calibrated_ = len(set(y_valid)) > 1
        if self.calibrated_:
            self.calibrator_ = LogisticRegression(C=1e4).fit(raw.reshape(-1, 1), y_valid)
        else:
            log.warning("authenticity risk: the validation slice has one class only; probabilities are not calibrated")
        return self

    def fit(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray, *,
            fit_lightgbm: FitLightGBM = fit_locally) -> RiskModel:
        jobs = self.lightgbm_jobs(train, y_train, valid, y_valid)
        return self.finish(fit_lightgbm(jobs), jobs)

    def _raw(self, features: pd.DataFrame) -> np.ndarray:
        return _predict(self.model_, features, raw_score=True)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise NotFittedError("authenticity risk model is not fitted: call fit(...) first")
        raw = self._raw(features)
        if self.calibrated_:
            return self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]
        return 1 / (1 + np.exp(-raw))

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        return _predict(self.model_, features, pred_contrib=True)
