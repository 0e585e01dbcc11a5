"""The estimators behind the targets (engage/model/targets.py is the registry that makes them).

* `CountModel`: expected log1p count as the account's level (cross-fitted LightGBM on log1p counts from the
  level families) plus the draft's uplift (LightGBM on the level's out-of-fold residuals), with an interval
  from two quantile models conformalised on the validation slice.
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
from typing import Literal, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from engage.config import LightGBMSettings
from engage.data.schema import INSIGHT_COUNTS
from engage.engine import LightGBMJob, fit_locally
from engage.errors import NotFittedError
from engage.features.families import LEVEL_FAMILIES, family_columns

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
    """Expected log1p count as the account's level plus the draft's uplift, with a calibrated interval.

    Fitted in two stages of LightGBM jobs (`lightgbm_jobs`, then `finish` hands out `next_jobs` once):

    1. **level**: log1p count from the level families (`LEVEL_FAMILIES`: the account's history, followers,
       post index, time and gaps), fitted on every training and validation post (the latest posts before
       the test period say most about it) with the fixed trees of `level_params` (no early stopping), and
       cross-fitted over `folds` folds of whole accounts (or of posts at random, `folds_by="post"`), so that
       every post has an out-of-fold level that never saw it.
    2. **uplift**: what the draft's own features (photo, caption, hashtags, disclosure, consistency with the
       feed, duplicates, format) add to the level, learned on the training posts' out-of-fold residuals
       (early-stopped on the validation posts') with an objective that rewards ordering posts within an
       account: regression on account-demeaned residuals, or LightGBM's lambdarank with accounts as groups
       (whose scores are put in log1p units by their slope on the validation posts; rescaling the regression
       the same way cost MAE on large_accounts_16536: 0.370 against 0.366). Beside it two quantile models of
       the residual give the interval, which is then widened or narrowed so that it covers `interval` of
       the validation posts (conformalised quantile regression, Romano et al. 2019: the validation slice
       precedes the test period of every account).
    """

    def __init__(self, target: ModelSpec, params: LightGBMSettings, interval: float = 0.8, seed: int = 0, *,
                 folds: int = 5, folds_by: Literal["account", "post"] = "account",
                 objective: Literal["regression", "lambdarank"] = "regression", drop: tuple[str, ...] = (),
                 level_params: LightGBMSettings | None = None, level_start: Literal["none", "trailing"] = "none"):
        self.target = target
        self.params = params
        self.interval = interval
        self.seed = seed
        self.folds = folds
        self.folds_by = folds_by
        self.objective = objective
        self.drop = drop
        self.level_params = level_params or params
        self.level_start = level_start

    # -- stage 1: the level ------------------------------------------------------------------------
    def lightgbm_jobs(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray,
                      groups_train: np.ndarray | None = None, groups_valid: np.ndarray | None = None
                      ) -> list[LightGBMJob]:
        """The level's jobs: one on every training and validation post, then one per fold (its posts held out).

        `groups_*`: each row's account (None: all rows one account's)."""
        columns = [c for c in model_columns(self.target, train.columns) if c not in family_columns(train.columns, self.drop)]
        self.level_names_ = family_columns(columns, LEVEL_FAMILIES)
        self.uplift_names_ = [c for c in columns if c not in self.level_names_]
        self.feature_names_ = [*self.level_names_, *self.uplift_names_]
        groups_train = np.zeros(len(train), dtype=int) if groups_train is None else np.asarray(groups_train)
        groups_valid = np.zeros(len(valid), dtype=int) if groups_valid is None else np.asarray(groups_valid)
        self._fit = (train, np.asarray(y_train, dtype=float), valid, np.asarray(y_valid, dtype=float), groups_train, groups_valid)
        both = pd.concat([train[self.level_names_], valid[self.level_names_]])
        y_both = np.concatenate([y_train, y_valid])
        self.level_mean_ = float(np.mean(y_both))
        start = self._start(both)
        if not self.level_names_:  # every level family dropped: the level is the mean
            self._folds = []
            return []
        groups = np.concatenate([groups_train.astype(str), groups_valid.astype(str)])
        self._folds = _fold_rows(groups, self.folds, self.seed, by=self.folds_by)
        level = _lgb_params(self.level_params, self.seed)
        valid_part = valid[self.level_names_]
        start_valid = self._start(valid_part)

        def starting(rows: np.ndarray) -> dict:
            return {"init_score": start[rows], "eval_init_score": [start_valid]} if self._starts else {}

        everything = np.arange(len(both))
        jobs = [LightGBMJob(lgb.LGBMRegressor(objective="l2", **level), both, y_both, valid_part, y_valid, None,
                            starting(everything))]
        for held_out in self._folds:
            keep = np.setdiff1d(everything, held_out)
            jobs.append(LightGBMJob(lgb.LGBMRegressor(objective="l2", **level), both.iloc[keep], y_both[keep],
                                    valid_part, y_valid, None, starting(keep)))
        return jobs

    def finish(self, fitted: list[lgb.LGBMModel], jobs: list[LightGBMJob]) -> CountModel:
        """Take a stage's fitted estimators; after the level, `next_jobs` holds the uplift's."""
        if getattr(self, "_stage", "level") == "level":
            return self._finish_level(fitted)
        return self._finish_uplift(fitted, jobs)

    def next_jobs(self) -> list[LightGBMJob]:
        """The jobs of the next stage (none once the model is complete)."""
        jobs, self._next = getattr(self, "_next", []), []
        return jobs

    def _finish_level(self, fitted: list[lgb.LGBMModel]) -> CountModel:
        train, y_train, valid, y_valid, groups_train, groups_valid = self._fit
        both = pd.concat([train, valid])
        if fitted:
            self.level_, fold_models = fitted[0], fitted[1:]
            oof = np.full(len(both), np.nan)
            for held_out, model in zip(self._folds, fold_models, strict=True):
                oof[held_out] = self._start(both.iloc[held_out]) + _predict(model, both.iloc[held_out])
            oof = np.where(np.isnan(oof), self._level(both), oof)
        else:
            self.level_ = None
            oof = np.full(len(both), self.level_mean_)
        self._oof = oof
        residual_train = y_train - oof[:len(train)]
        residual_valid = y_valid - oof[len(train):]
        self._stage = "uplift"
        self._next = self._uplift_jobs(train, residual_train, valid, residual_valid, groups_train, groups_valid)
        return self

    # -- stage 2: the uplift and the interval -------------------------------------------------------
    def _uplift_jobs(self, train: pd.DataFrame, r_train: np.ndarray, valid: pd.DataFrame, r_valid: np.ndarray,
                     groups_train: np.ndarray, groups_valid: np.ndarray) -> list[LightGBMJob]:
        alpha = (1 - self.interval) / 2
        plain = _lgb_params(self.params, self.seed)  # LightGBM's quantile objective takes no monotone constraints
        jobs = [LightGBMJob(lgb.LGBMRegressor(objective="quantile", alpha=a, **plain), train[self.feature_names_], r_train,
                            valid[self.feature_names_], r_valid, self.params.early_stopping_rounds) for a in (alpha, 1 - alpha)]
        if not self.uplift_names_:
            return jobs
        names = self.uplift_names_
        uplift = _lgb_params(self.params, self.seed, self.target, names)
        if self.objective == "lambdarank":
            order_train, order_valid = np.argsort(groups_train, kind="stable"), np.argsort(groups_valid, kind="stable")
            ranker = lgb.LGBMRanker(objective="lambdarank", lambdarank_truncation_level=10_000, **uplift)
            jobs.insert(0, LightGBMJob(
                ranker, train[names].iloc[order_train], _relevance(r_train[order_train], groups_train[order_train]),
                valid[names].iloc[order_valid], _relevance(r_valid[order_valid], groups_valid[order_valid]),
                self.params.early_stopping_rounds,
                fit_params={"group": _group_sizes(groups_train[order_train]),
                            "eval_group": [_group_sizes(groups_valid[order_valid])], "eval_at": [10_000]}))
        else:
            jobs.insert(0, LightGBMJob(lgb.LGBMRegressor(objective="l2", **uplift), train[names],
                                       _demeaned(r_train, groups_train), valid[names], _demeaned(r_valid, groups_valid),
                                       self.params.early_stopping_rounds))
        return jobs

    def _finish_uplift(self, fitted: list[lgb.LGBMModel], jobs: list[LightGBMJob]) -> CountModel:
        train, y_train, valid, y_valid, groups_train, groups_valid = self._fit
        if self.uplift_names_:
            self.uplift_, self.low_, self.high_ = fitted
        else:
            self.uplift_ = None
            self.low_, self.high_ = fitted
        level_valid = self._oof[len(train):]
        self.uplift_scale_, self.uplift_shift_ = 1.0, 0.0
        if self.uplift_ is not None:
            # The uplift's centre: its mean over the training posts (the level holds the account's usual).
            self.uplift_shift_ = float(np.mean(_predict(self.uplift_, train)))
            if self.objective == "lambdarank":
                # Ranker scores are only ordered within an account: their scale in log1p units is the slope of
                # the account-demeaned residual on the account-demeaned score over the validation posts.
                x = _demeaned(_predict(self.uplift_, valid), groups_valid)
                r = _demeaned(y_valid - level_valid, groups_valid)
                self.uplift_scale_ = max(float(np.dot(x, r) / max(np.dot(x, x), 1e-12)), 0.0)
        # Conformalised quantile regression on the validation posts (their out-of-fold levels).
        low, high = level_valid + _predict(self.low_, valid), level_valid + _predict(self.high_, valid)
        known = ~np.isnan(y_valid)
        scores = np.maximum(low - y_valid, y_valid - high)[known]
        if len(scores) >= 10:
            q = min(1.0, np.ceil((len(scores) + 1) * self.interval) / len(scores))
            self.interval_margin_ = float(np.quantile(scores, q, method="higher"))
        else:
            self.interval_margin_ = 0.0
        del self._fit, self._oof
        self._stage = "done"
        return self

    def fit(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray, *,
            groups_train: np.ndarray | None = None, groups_valid: np.ndarray | None = None,
            fit_lightgbm: FitLightGBM = fit_locally) -> CountModel:
        """Both stages; `fit_lightgbm` fits the LightGBM estimators (here by default; the Ray engine passes its own)."""
        jobs = self.lightgbm_jobs(train, y_train, valid, y_valid, groups_train, groups_valid)
        self.finish(fit_lightgbm(jobs), jobs)
        jobs = self.next_jobs()
        return self.finish(fit_lightgbm(jobs), jobs)

    # -- prediction ----------------------------------------------------------------------------------
    @property
    def _starts(self) -> bool:
        return getattr(self, "level_start", "none") == "trailing" and self.target.baseline_feature in self.level_names_

    def _start(self, features: pd.DataFrame) -> np.ndarray:
        """Where the level's trees start: the account's trailing mean (`level_start="trailing"`, the training
        mean where it has none), else 0 (the trees learn log1p from scratch)."""
        if not self._starts:
            return np.zeros(len(features))
        trailing = features[self.target.baseline_feature].to_numpy(dtype=float)
        return np.where(np.isnan(trailing), self.level_mean_, trailing)

    def _level(self, features: pd.DataFrame) -> np.ndarray:
        if self.level_ is None:
            return np.full(len(features), self.level_mean_)
        return self._start(features) + _predict(self.level_, features)

    def _uplift(self, features: pd.DataFrame) -> np.ndarray:
        if self.uplift_ is None:
            return np.zeros(len(features))
        return self.uplift_scale_ * (_predict(self.uplift_, features) - self.uplift_shift_)

    def predict_log1p(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """expected = level + uplift (log1p units), with the calibrated interval around it."""
        if getattr(self, "_stage", None) != "done":
            if hasattr(self, "mean_"):  # a bundle of an engage before the level and uplift split
                raise NotFittedError(f"this {self.target.name} model was trained by an older engage (one model, no "
                                     "level and uplift); retrain it with `python train.py`")
            raise NotFittedError(f"{self.target.name} model is not fitted: call fit(...) first")
        level = self._level(features)
        uplift = self._uplift(features)
        expected = level + uplift
        low = level + _predict(self.low_, features) - self.interval_margin_
        high = level + _predict(self.high_, features) + self.interval_margin_
        # Quantile models are fitted separately and can cross; the interval always contains the estimate.
        return {"expected": expected, "low": np.minimum(low, expected), "high": np.maximum(high, expected),
                "level": level, "uplift": uplift}

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions (log1p units) to level + uplift, columns in `feature_names_` order (level
        features first), the last column the two models' bias."""
        parts, bias = [], np.zeros(len(features))
        if self.level_ is not None:
            level = _predict(self.level_, features, pred_contrib=True)
            parts.append(level[:, :-1])
            bias += level[:, -1] + self._start(features)
        else:
            bias += self.level_mean_
        if self.uplift_ is not None:
            uplift = _predict(self.uplift_, features, pred_contrib=True) * self.uplift_scale_
            parts.append(uplift[:, :-1])
            bias += uplift[:, -1] - self.uplift_scale_ * self.uplift_shift_
        return np.column_stack([*parts, bias])


def _fold_rows(groups: np.ndarray, folds: int, seed: int, by: str = "account") -> list[np.ndarray]:
    """Row positions held out by each fold: whole accounts (shuffled by `seed`) when there are at least
    `folds` of them, else (or with `by="post"`) posts at random."""
    codes, uniques = pd.factorize(pd.Series(groups).astype(str))
    rng = np.random.default_rng(seed)
    if by == "account" and len(uniques) >= folds:
        which = (rng.permutation(len(uniques)) % folds)[codes]
    else:
        which = rng.permutation(len(groups)) % folds
    return [np.flatnonzero(which == k) for k in range(folds) if (which == k).any() and (which != k).any()]


def _demeaned(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each value minus its group's mean: what is left to order within an account."""
    frame = pd.Series(np.asarray(values, dtype=float))
    return (frame - frame.groupby(pd.Series(groups).astype(str).to_numpy()).transform("mean")).to_numpy()


def _relevance(values: np.ndarray, groups: np.ndarray, grades: int = 5) -> np.ndarray:
    """Integer relevance 0..grades-1 from each value's rank within its group (lambdarank's labels)."""
    ranks = pd.Series(values).groupby(pd.Series(groups).astype(str).to_numpy()).rank(pct=True, method="average")
    return np.minimum((ranks.to_numpy() * grades).astype(int), grades - 1)


def _group_sizes(sorted_groups: np.ndarray) -> np.ndarray:
    """Sizes of the runs of equal groups in an array sorted by group."""
    values = pd.Series(sorted_groups).astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else np.zeros(0, dtype=int)
    return np.diff(np.r_[starts, len(values)])


class RiskModel:
    """Calibrated probability that the audience finds a post inauthentic."""

    def __init__(self, params: LightGBMSettings, seed: int = 0, target: ModelSpec | None = None, *,
                 drop: tuple[str, ...] = ()):
        self.params = params
        self.seed = seed
        self.target = target  # its monotone directions and feature subset; None: the plain risk model
        self.drop = drop  # feature families left out (ablations)

    @property
    def _spec(self) -> ModelSpec:
        # Risk models pickled before `target` was a parameter are read back without it.
        return getattr(self, "target", None) or _PLAIN_RISK

    def lightgbm_jobs(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray,
                      groups_train: np.ndarray | None = None, groups_valid: np.ndarray | None = None) -> list[LightGBMJob]:
        dropped = family_columns(train.columns, getattr(self, "drop", ()))
        columns = [c for c in model_columns(self._spec, train.columns) if c not in dropped]
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
