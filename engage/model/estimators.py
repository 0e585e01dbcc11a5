"""The estimators behind the targets (engage/model/targets.py is the registry that makes them).

* `CountModel`: expected log1p count as the account's level (cross-fitted LightGBM on log1p counts from the
  level families) plus the draft's uplift (LightGBM on the level's out-of-fold residuals), with a
  split-conformal interval from the validation posts as predicted by a level that never saw their period.
* `RiskModel`: a LightGBM classifier of the probability that the audience finds a post inauthentic,
  calibrated (Platt) on the validation slice.

Both follow the scikit-learn contract: `__init__` stores its parameters, `fit` sets every learned attribute
(ending in `_`), and predicting before `fit` raises `NotFittedError`. Their LightGBM estimators are handed
to an engine as `engage.engine.LightGBMJob`s (`lightgbm_jobs`, then `finish`), so the local and the Ray
engine fit the same estimators with the same call (`engage.engine.fit_estimator`). A count model plans two
stages (the level, then the uplift on its out-of-fold residuals), and a third with the adaptive interval (the
scale of its errors): a `FitPlan` each, chained by `finish`.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from engage.config import LightGBMSettings
from engage.engine import LightGBMJob, fit_locally
from engage.errors import NotFittedError
from engage.features.families import LEVEL_FAMILIES, family_columns
from engage.model.booster import predict_booster
from engage.model.folds import (
    MIN_CALIBRATION,
    SCALE_FLOOR,
    SCALE_PARAMS,
    conformal_margin,
    demeaned,
    fold_rows,
    group_sizes,
    normalized_errors,
    post_scales,
    relevance,
    scale_elasticity,
)
from engage.model.plans import (
    _PLAIN_RISK,
    FitLightGBM,
    FitPlan,
    ModelSpec,
    _lgb_params,
    fit_plan,
    model_columns,
)

log = logging.getLogger(__name__)


class CountModel:
    """Expected log1p count as the account's level plus the draft's uplift, with a calibrated interval.

    Fitted in stages of LightGBM jobs, one `FitPlan` each (`lightgbm_jobs` plans the level; its `finish`
    plans the uplift in `plan.next`; the uplift's `finish` plans the interval's scale, and that stage's
    `finish` sets every learned attribute at once; with `interval_scale="constant"` the uplift's does):

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
       the same way cost MAE on large_accounts_16536: 0.370 against 0.366).

    **The interval** is split-conformal (symmetric in log1p, the finite-sample quantile of the absolute
    errors) on *prospective* errors: a third level fitted on the training posts only predicts the validation
    posts, each account's latest before the test period, as the model will predict posts of a period it has
    not seen; the uplift is added. The levels above saw the validation period of other accounts (cross-fitting
    is over accounts, not time), so their validation errors are those of a known period: too small on tables
    of few posts per account (conformalised quantile regression on them covered 0.95-0.97 of the test posts
    of micro_influencers_519 and one_account_insights_176). Under `MIN_CALIBRATION` validation posts with a
    count, the training posts' out-of-fold errors join them (small data: a margin from ten posts is noise).

    **Its width follows the post** (`interval_scale="adaptive"`, the default): normalized split-conformal
    (Lei et al. 2018, section 5.2). A third stage, the *scale*, learns the absolute error of the prediction
    (out-of-fold level plus uplift) of the training posts from the level's features (the account's trailing
    spread, its number of earlier posts, followers...; `folds.SCALE_PARAMS`, fixed trees, never the
    validation posts), and the conformal rank is taken of the validation errors divided by their posts'
    scale; a post's half-width is that rank times its own scale (at least `SCALE_FLOOR` of the training
    posts' mean absolute error). The scale is followed as far as the validation posts confirm it
    (`folds.scale_elasticity`: `scale ** exponent`; exponent 0 drops it). Coverage over all posts is that of
    the constant margin; a steady account gets a narrow range and a new or volatile one a wide range
    (docs/results.md). `interval_scale="constant"`: one margin for every post (models pickled before the
    scale read back as that).
    """

    # Learned by fit (set by the last stage's `finish`), declared for the type checker; absent until then.
    level_names_: list[str]
    uplift_names_: list[str]
    feature_names_: list[str]
    level_mean_: float
    level_: lgb.LGBMModel | None
    uplift_: lgb.LGBMModel | None
    uplift_scale_: float
    uplift_shift_: float
    interval_margin_: float  # the conformal rank of the (normalized) errors: the half-width at scale 1
    interval_scale_: lgb.LGBMModel | None  # the scale model (None: one margin for every post)
    interval_floor_: float  # the least scale a post gets
    interval_centre_: float  # the training posts' geometric mean scale
    interval_exponent_: float  # how far the scale is followed (`folds.scale_elasticity`)

    def __init__(self, target: ModelSpec, params: LightGBMSettings, interval: float = 0.8, seed: int = 0, *,
                 folds: int = 5, folds_by: Literal["account", "post"] = "account",
                 objective: Literal["regression", "lambdarank"] = "regression", drop: tuple[str, ...] = (),
            level_params: LightGBMSettings | None = None, level_start: Literal["none", "trailing"] = "none",
                 interval_scale: Literal["constant", "adaptive"] = "adaptive"):
        self.target = target
        self.params = params
        self.interval = interval
        self.seed = seed
        self.folds = folds
        self.folds_by = folds_by
        self.objective = objective
        self.drop = drop
        self.level_params = level_params  # None: `params`
        self.level_start = level_start
        self.interval_scale = interval_scale

    # -- stage 1: the level ------------------------------------------------------------------------
    def lightgbm_jobs(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame,
                      y_valid: np.ndarray,
            groups_train: np.ndarray | None = None, groups_valid: np.ndarray | None = None) -> FitPlan:
        """The level's plan, which sets nothing: one job on every training and validation post, one per
        fold (its posts held out), then one on the training posts only (the interval's prospective level).
        `groups_*`: each row's account (None: all rows one account's)."""
        dropped = family_columns(train.columns, self.drop)
        columns = [c for c in model_columns(self.target, train.columns) if c not in dropped]
        level_names = family_columns(columns, LEVEL_FAMILIES)
        uplift_names = [c for c in columns if c not in level_names]
        groups_train = np.zeros(len(train), dtype=int) if groups_train is None else np.asarray(groups_train)
        groups_valid = np.zeros(len(valid), dtype=int) if groups_valid is None else np.asarray(groups_valid)
        both = pd.concat([train[level_names], valid[level_names]])
        y_both = np.concatenate([y_train, y_valid])
        level_mean = float(np.mean(y_both))
        learned = {"level_names_": level_names, "uplift_names_": uplift_names,
                   "feature_names_": [*level_names, *uplift_names], "level_mean_": level_mean}
        carry = {"train": train, "y_train": np.asarray(y_train, dtype=float), "valid": valid,
                 "y_valid": np.asarray(y_valid, dtype=float), "groups_train": groups_train,
                 "groups_valid": groups_valid,
                 "folds": []}
        if not level_names:  # every level family dropped: the level is the mean
            return FitPlan([], learned, "level", carry)
        groups = np.concatenate([groups_train.astype(str), groups_valid.astype(str)])
        carry["folds"] = fold_rows(groups, self.folds, self.seed, by=self.folds_by)
        level = _lgb_params(self.level_params or self.params, self.seed)
        valid_part = valid[level_names]
        start = self._start(both, level_mean, level_names)
        start_valid = self._start(valid_part, level_mean, level_names)
        starts = self._starts(level_names)

        def starting(rows: np.ndarray) -> dict[str, Any]:
            return {"init_score": start[rows], "eval_init_score": [start_valid]} if starts else {}

        everything = np.arange(len(both))
        jobs = [LightGBMJob(lgb.LGBMRegressor(objective="l2", **level), both, y_both, valid_part, y_valid,
                            None,
                            starting(everything))]
        for held_out in carry["folds"]:  # each fold's rows of `both` are taken when it is fitted
            keep = np.setdiff1d(everything, held_out)
            jobs.append(LightGBMJob(lgb.LGBMRegressor(objective="l2", **level), both, y_both[keep],
                                    valid_part, y_valid, None, starting(keep), train_rows=keep))
        earlier = np.arange(len(train))
        jobs.append(LightGBMJob(lgb.LGBMRegressor(objective="l2", **level), both,
                                y_both[earlier],
                                valid_part, y_valid, None, starting(earlier), train_rows=earlier))
        return FitPlan(jobs, learned, "level", carry)

    def finish(self, fitted: list[lgb.LGBMModel], plan: FitPlan) -> CountModel:
        """Take a stage's fitted estimators: after the level, `plan.next` holds the uplift's plan (nothing is
        set yet); after the uplift, the interval scale's plan (or, with one margin, every learned attribute is
        set at once); after the scale, every learned attribute is set at once."""
        if plan.stage == "level":
            plan.next = self._uplift_plan(fitted, plan)
            return self
        if plan.stage == "uplift":
            return self._finish_uplift(fitted, plan)
        if plan.stage != "interval":
            raise ValueError(f"{self.target.name} model: unknown fit stage {plan.stage!r}")
        return self._finish_interval(fitted[0], plan.learned, plan.carry)

    # -- stage 2: the uplift and the interval -------------------------------------------------------
    def _uplift_plan(self, fitted: list[lgb.LGBMModel], plan: FitPlan) -> FitPlan:
        learned, carry = dict(plan.learned), plan.carry
        train, valid = carry["train"], carry["valid"]
        level_mean, level_names = learned["level_mean_"], learned["level_names_"]
        both = pd.concat([train[level_names], valid[level_names]])  # the level's columns: all it reads
        if fitted:
            level, fold_models, earlier = fitted[0], fitted[1:-1], fitted[-1]
            oof = np.full(len(both), np.nan)
            for held_out, model in zip(carry["folds"], fold_models, strict=True):
                part = both.iloc[held_out]
                oof[held_out] = self._start(part, level_mean, level_names) + predict_booster(model, part)
            whole = self._start(both, level_mean, level_names) + predict_booster(level, both)
            oof = np.where(np.isnan(oof), whole, oof)
            prospective = self._start(valid, level_mean, level_names) + predict_booster(earlier, valid)
        else:
            level = None
            oof = np.full(len(both), level_mean)
            known = ~np.isnan(carry["y_train"])
            prospective = np.full(len(valid),
                                  float(np.mean(carry["y_train"][known])) if known.any() else level_mean)
        learned["level_"] = level
        r_train = carry["y_train"] - oof[:len(train)]
        r_valid = carry["y_valid"] - oof[len(train):]
        groups_train, groups_valid = carry["groups_train"], carry["groups_valid"]
        names = learned["uplift_names_"]
        jobs: list[LightGBMJob] = []
        if names:
            uplift = _lgb_params(self.params, self.seed, self.target, names)
            if self.objective == "lambdarank":
                order_train = np.argsort(groups_train, kind="stable")
                order_valid = np.argsort(groups_valid, kind="stable")
                ranker = lgb.LGBMRanker(objective="lambdarank", lambdarank_truncation_level=10_000, **uplift)
                jobs.insert(0, LightGBMJob(
                    ranker, train[names].iloc[order_train],
                    relevance(r_train[order_train], groups_train[order_train]),
                    valid[names].iloc[order_valid],
                    relevance(r_valid[order_valid], groups_valid[order_valid]),
                    self.params.early_stopping_rounds,
                    fit_params={"group": group_sizes(groups_train[order_train]),
                                "eval_group": [group_sizes(groups_valid[order_valid])], "eval_at": [10_000]}))
            else:
                jobs.insert(0, LightGBMJob(lgb.LGBMRegressor(objective="l2", **uplift), train[names],
                                           demeaned(r_train, groups_train), valid[names],
                    demeaned(r_valid, groups_valid), self.params.early_stopping_rounds))
        level_valid = oof[len(train):]
        return FitPlan(jobs, learned, "uplift", {"valid": valid, "y_valid": carry["y_valid"], "train": train,
                                                 "y_train": carry["y_train"], "level_train": oof[:len(train)],
                                                 "groups_valid": groups_valid, "level_valid": level_valid,
                                                 "prospective_valid": prospective})

    def _finish_uplift(self, fitted: list[lgb.LGBMModel], plan: FitPlan) -> CountModel:
        learned, carry = dict(plan.learned), plan.carry
        train, valid, y_valid = carry["train"], carry["valid"], carry["y_valid"]
        groups_valid, level_valid = carry["groups_valid"], carry["level_valid"]
        uplift = fitted[0] if learned["uplift_names_"] else None
        scale, shift = 1.0, 0.0
        if uplift is not None:
            # The uplift's centre: its mean over the training posts (the level holds the account's usual).
            shift = float(np.mean(predict_booster(uplift, train)))
            if self.objective == "lambdarank":
                # Ranker scores are only ordered within an account: their scale in log1p units is the slope of
                # the account-demeaned residual on the account-demeaned score over the validation posts.
                x = demeaned(predict_booster(uplift, valid), groups_valid)
                r = demeaned(y_valid - level_valid, groups_valid)
                scale = max(float(np.dot(x, r) / max(np.dot(x, x), 1e-12)), 0.0)

        def uplifted(features: pd.DataFrame) -> np.ndarray:
            return np.zeros(len(features)) if uplift is None else scale * (
                predict_booster(uplift, features) - shift)

        learned.update(uplift_=uplift, uplift_scale_=scale, uplift_shift_=shift)
        # The prediction's errors: the validation posts' prospective ones (the interval's calibration set)
        # and the training posts' out-of-fold ones (the scale's labels; the calibration's too on small data).
        carry = {**carry, "errors_valid": y_valid - carry["prospective_valid"] - uplifted(valid),
                 "errors_train": carry["y_train"] - carry["level_train"] - uplifted(train)}
        known = np.flatnonzero(~np.isnan(carry["errors_train"]))
        if not (self._adaptive() and len(known) and learned["level_names_"]):  # no level: one margin
            return self._finish_interval(None, learned, carry)
        # Stage 3, the interval's scale: how far the prediction misses a post, learned on the training posts
        # from the level's features (the account's history: its spread, its number of posts...), a few
        # columns (the draft's features as well cost a copy of the embeddings at a million posts, and gave
        # the same coverage on large_accounts_16536: docs/results.md).
        names = learned["level_names_"]
        model = lgb.LGBMRegressor(objective="l2", random_state=self.seed, n_jobs=self.params.n_jobs,
                                  **SCALE_PARAMS)
        plan.next = FitPlan([LightGBMJob(model, train[names], np.abs(carry["errors_train"][known]),
                                         valid[names], np.nan_to_num(np.abs(carry["errors_valid"])), None,
                                         train_rows=known)], learned, "interval", carry)
        return self

    def _finish_interval(self, interval_scale: lgb.LGBMModel | None, learned: dict[str, Any],
                         carry: dict[str, Any]) -> CountModel:
        """The split-conformal margin on the validation posts' prospective errors, each in units of its
        post's scale (1 without the scale model; see the class docstring); every learned attribute set."""
        train, valid = carry["train"], carry["valid"]
        floor, centre, exponent = 1.0, 1.0, 0.0
        if interval_scale is not None:
            floor = SCALE_FLOOR * float(np.nanmean(np.abs(carry["errors_train"])))
            exponent = scale_elasticity(carry["errors_valid"],
                                        np.maximum(predict_booster(interval_scale, valid), floor))
            if exponent > 0:
                trained = np.maximum(predict_booster(interval_scale, train), floor)
                centre = float(np.exp(np.mean(np.log(trained))))
            else:  # the validation posts do not confirm the scale: one margin for every post
                interval_scale, floor = None, 1.0

        def scales(features: pd.DataFrame) -> np.ndarray:
            if interval_scale is None:
                return np.ones(len(features))
            return post_scales(predict_booster(interval_scale, features), floor, centre, exponent)

        errors = normalized_errors(carry["errors_valid"], scales(valid))
        errors = errors[~np.isnan(errors)]
        if len(errors) < MIN_CALIBRATION:
            oof_errors = normalized_errors(carry["errors_train"], scales(train))
            errors = np.concatenate([errors, oof_errors[~np.isnan(oof_errors)]])
        learned = {**learned, "interval_margin_": conformal_margin(errors, self.interval),
                   "interval_scale_": interval_scale, "interval_floor_": floor, "interval_centre_": centre,
                   "interval_exponent_": exponent}
        for name, value in learned.items():
            setattr(self, name, value)
        return self

    def fit(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray, *,
            groups_train: np.ndarray | None = None, groups_valid: np.ndarray | None = None,
            fit_lightgbm: FitLightGBM = fit_locally) -> CountModel:
        """Every stage; `fit_lightgbm` fits the LightGBM estimators
        (here by default; the Ray engine passes its own)."""
        plan = self.lightgbm_jobs(train, y_train, valid, y_valid, groups_train, groups_valid)
        return fit_plan(self, plan, fit_lightgbm)  # type: ignore[no-any-return]

    # -- prediction ----------------------------------------------------------------------------------
    def _adaptive(self) -> bool:
        # Models pickled before `interval_scale` was a parameter read back with one margin for every post.
        return getattr(self, "interval_scale", "constant") == "adaptive"

    def _starts(self, level_names: list[str]) -> bool:
        return getattr(self, "level_start",
                       "none") == "trailing" and self.target.baseline_feature in level_names

    def _start(self, features: pd.DataFrame, level_mean: float, level_names: list[str]) -> np.ndarray:
        """Where the level's trees start: the account's trailing mean (`level_start="trailing"`, the training
        mean where it has none), else 0 (the trees learn log1p from scratch)."""
        if not self._starts(level_names):
            return np.zeros(len(features))
        trailing = features[self.target.baseline_feature].to_numpy(dtype=float)
        return np.where(np.isnan(trailing), level_mean, trailing)

    def _check_fitted(self) -> None:
        if not hasattr(self, "interval_margin_"):
            if hasattr(self, "mean_"):  # a bundle of an engage before the level and uplift split
                raise NotFittedError(
                    f"this {self.target.name} model was trained by an older engage (one model, no "
                                     "level and uplift); retrain it with `python train.py`")
            raise NotFittedError(f"{self.target.name} model is not fitted: call fit(...) first")

    def _level(self, features: pd.DataFrame) -> np.ndarray:
        if self.level_ is None:
            return np.full(len(features), self.level_mean_)
        return self._start(features, self.level_mean_,
                           self.level_names_) + predict_booster(self.level_, features)

    def _uplift(self, features: pd.DataFrame) -> np.ndarray:
        if self.uplift_ is None:
            return np.zeros(len(features))
        return self.uplift_scale_ * (predict_booster(self.uplift_, features) - self.uplift_shift_)

    def half_width(self, features: pd.DataFrame) -> np.ndarray:
        """Each post's interval half-width (log1p units): the conformal margin times its scale."""
        self._check_fitted()
        scale = getattr(self, "interval_scale_", None)  # absent: pickled before the scale, one margin
        if scale is None:
            return np.full(len(features), self.interval_margin_)
        return self.interval_margin_ * post_scales(predict_booster(scale, features), self.interval_floor_,
                                                   self.interval_centre_, self.interval_exponent_)

    def predict_log1p(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """expected = level + uplift (log1p units), with the calibrated interval around it."""
        self._check_fitted()
        level = self._level(features)
        uplift = self._uplift(features)
        expected = level + uplift
        half = self.half_width(features)
        return {"expected": expected, "low": expected - half, "high": expected + half, "level": level,
                "uplift": uplift}

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        """Per-feature contributions (log1p units) to level + uplift, columns in `feature_names_` order (level
        features first), the last column the two models' bias."""
        self._check_fitted()
        parts, bias = [], np.zeros(len(features))
        if self.level_ is not None:
            level = predict_booster(self.level_, features, pred_contrib=True)
            parts.append(level[:, :-1])
            bias += level[:, -1] + self._start(features, self.level_mean_, self.level_names_)
        else:
            bias += self.level_mean_
        if self.uplift_ is not None:
            uplift = predict_booster(self.uplift_, features, pred_contrib=True) * self.uplift_scale_
            parts.append(uplift[:, :-1])
            bias += uplift[:, -1] - self.uplift_scale_ * self.uplift_shift_
        return np.column_stack([*parts, bias])


class RiskModel:
    """Calibrated probability that the audience finds a post inauthentic."""

    # Learned by fit (set by `finish`), declared for the type checker; absent until then.
    feature_names_: list[str]
    model_: lgb.LGBMModel
    calibrated_: bool
    calibrator_: LogisticRegression

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

    def lightgbm_jobs(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame,
                      y_valid: np.ndarray,
            groups_train: np.ndarray | None = None, groups_valid: np.ndarray | None = None) -> FitPlan:
        """The first half of `fit`, which sets nothing: the classifier left to fit (`finish` calibrates it).
        `groups_*` (each row's account) are taken for the count models' sake and unused."""
        dropped = family_columns(train.columns, getattr(self, "drop", ()))
        columns = [c for c in model_columns(self._spec, train.columns) if c not in dropped]
        train, valid = train[columns], valid[columns]
        base = _lgb_params(self.params, self.seed, self._spec, list(train.columns))
        positives = max(int(y_train.sum()), 1)
        classifier = lgb.LGBMClassifier(objective="binary", scale_pos_weight=max(
            (len(y_train) - positives) / positives, 1.0) ** 0.5, **base)
        rounds = self.params.early_stopping_rounds if len(set(y_valid)) > 1 else None
        return FitPlan([LightGBMJob(classifier, train, y_train, valid, y_valid, rounds)],
                       {"feature_names_": list(train.columns)})

    def finish(self, fitted: list[lgb.LGBMModel], plan: FitPlan) -> RiskModel:
        """The second half of `fit`: the fitted classifier calibrated on the validation slice, and every
        learned attribute set."""
        (model,), valid, y_valid = fitted, plan.jobs[0].valid, plan.jobs[0].y_valid
        raw = predict_booster(model, valid, raw_score=True)
        calibrated = len(set(y_valid)) > 1
        for name, value in plan.learned.items():
            setattr(self, name, value)
        self.model_, self.calibrated_ = model, calibrated
        if calibrated:
            self.calibrator_ = LogisticRegression(C=1e4).fit(raw.reshape(-1, 1), y_valid)
        else:
            log.warning("authenticity risk: the validation slice has "
                        "one class only; probabilities are not calibrated")
        return self

    def fit(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray, *,
            fit_lightgbm: FitLightGBM = fit_locally) -> RiskModel:
        plan = self.lightgbm_jobs(train, y_train, valid, y_valid)
        return self.finish(fit_lightgbm(plan.jobs), plan)

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("authenticity risk model is not fitted: call fit(...) first")

    def _raw(self, features: pd.DataFrame) -> np.ndarray:
        return predict_booster(self.model_, features, raw_score=True)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        raw = self._raw(features)
        if self.calibrated_:
            return self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]
        return 1 / (1 + np.exp(-raw))

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        return predict_booster(self.model_, features, pred_contrib=True)
