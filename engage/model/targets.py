"""What engage predicts: a small registry of targets that training, evaluation, logging and serving loop over.

* `likes`, `comments` (kind "count"): LightGBM regressors on log1p counts, learned as the residual against
  a reference level: the account's trailing baseline (mean log1p count of its last posts) when it has one,
  else a population prior fitted on log1p followers. Two quantile models give the prediction interval.
* `authenticity_risk` (kind "risk"): a LightGBM classifier of the probability that the audience finds the
  post inauthentic, calibrated (Platt) on the validation slice. Label: `felt_fake` when the data set has
  it, else a proxy from outcomes (see `risk_labels`, explained in docs/model.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from engage.config import LightGBMSettings

log = logging.getLogger(__name__)

#: Proxy risk label: a post whose likes fall below a third of the account's trailing baseline.
PROXY_DROP = math.log(3.0)
#: What the risk model learned from, in the user's words: stored with the model, shown with every score.
RISK_LABEL_FELT_FAKE = "the data set's felt_fake labels: whether the audience found a post inauthentic"
RISK_LABEL_PROXY = ("an engagement-drop proxy: posts whose likes fell below a third of the account's usual "
                    "(the data had no felt_fake labels)")


@dataclass(frozen=True)
class Target:
    name: str
    kind: Literal["count", "risk"]
    column: str  # the posts column the label comes from
    baseline_feature: str | None = None  # history feature holding the account's trailing log1p level
    #: feature -> +1/-1: what the literature says the prediction may only do as the feature grows. Small
    #: data sets cannot learn these directions reliably; stating them keeps the advice consistent.
    monotone: tuple[tuple[str, int], ...] = ()


#: Audiences punish hashtag stuffing and over-long captions, relative to the account's habit and in raw
#: counts (an account known only by the history sent with a draft has a noisy habit, and the advice in
#: `draft_flags` speaks of both), and the same post on other feeds the same day.
_ENGAGEMENT_MONOTONE = (("hashtags_z", -1), ("caption_chars_z", -1), ("hashtags", -1), ("caption_chars", -1),
                        ("duplicate_image_accounts", -1), ("duplicate_caption_accounts", -1))
#: Sponsored posts feel fake with #paid/#ad, brand messaging, the same post elsewhere the same day, and a
#: photo unlike the feed (59% / 36% / 31% / 31% / 34% in the literature; docs/demo-data.md).
_RISK_MONOTONE = (("has_ad", 1), ("has_paid", 1), ("has_sponsored", 1), ("has_paid_partnership", 1), ("brand_phrases", 1),
                  ("duplicate_image_accounts", 1), ("duplicate_caption_accounts", 1), ("image_feed_similarity", -1))

TARGETS: dict[str, Target] = {
    "likes": Target("likes", "count", "likes", "likes_baseline", _ENGAGEMENT_MONOTONE),
    "comments": Target("comments", "count", "comments", "comments_baseline", _ENGAGEMENT_MONOTONE),
    "authenticity_risk": Target("authenticity_risk", "risk", "felt_fake", monotone=_RISK_MONOTONE),
}


def _lgb_params(params: LightGBMSettings, seed: int, target: Target | None = None, columns: list[str] | None = None) -> dict:
    out = params.model_dump()
    out.pop("early_stopping_rounds")
    out = {**out, "random_state": seed, "verbose": -1}
    if target is not None and target.monotone and columns is not None:
        directions = dict(target.monotone)
        out["monotone_constraints"] = [directions.get(c, 0) for c in columns]
        out["monotone_constraints_method"] = "advanced"
    return out


@dataclass
class LightGBMJob:
    """One LightGBM estimator to fit, early-stopped on `valid`: the unit an engine fits (here, or on Ray)."""

    estimator: lgb.LGBMModel
    train: pd.DataFrame
    y_train: np.ndarray
    valid: pd.DataFrame
    y_valid: np.ndarray
    early_stopping_rounds: int | None


#: Fits a list of jobs and returns their fitted estimators in order (`fit_locally`, or the Ray engine's).
FitLightGBM = Callable[[list[LightGBMJob]], list[lgb.LGBMModel]]


def fit_estimator(job: LightGBMJob) -> lgb.LGBMModel:
    """The one LightGBM call of every model (the Ray engine makes it on each worker, on its shard of the
    training rows, with LightGBM's network parameters set on the estimator)."""
    callbacks = [lgb.early_stopping(job.early_stopping_rounds, verbose=False)] if job.early_stopping_rounds else []
    return job.estimator.fit(job.train, job.y_train, eval_X=(job.valid,), eval_y=(job.y_valid,), callbacks=callbacks)


def fit_locally(jobs: list[LightGBMJob]) -> list[lgb.LGBMModel]:
    return [fit_estimator(job) for job in jobs]


def _predict(model: lgb.LGBMModel, features: pd.DataFrame, **kwargs: bool) -> np.ndarray:
    """Booster prediction on the feature matrix: the scikit-learn wrapper's per-call DataFrame checks cost
    milliseconds per model, which matters when one draft is scored by seven models."""
    names = model.booster_.feature_name()
    if list(features.columns) != names:
        missing = [c for c in names if c not in features.columns]
        if missing:
            raise ValueError(f"features missing for the model: {', '.join(missing[:5])}")
        features = features[names]
    return model.booster_.predict(features.to_numpy(dtype=np.float64), **kwargs)


class CountModel:
    """Expected log1p count with an interval, as residual over a reference level (scikit-learn style)."""

    def __init__(self, target: Target, params: LightGBMSettings, interval: float = 0.8, seed: int = 0):
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
            raise RuntimeError(f"{self.target.name} model is not fitted")
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

    def __init__(self, params: LightGBMSettings, seed: int = 0):
        self.params = params
        self.seed = seed

    def lightgbm_jobs(self, train: pd.DataFrame, y_train: np.ndarray, valid: pd.DataFrame, y_valid: np.ndarray
                      ) -> list[LightGBMJob]:
        base = _lgb_params(self.params, self.seed, TARGETS["authenticity_risk"], list(train.columns))
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
            raise RuntimeError("authenticity risk model is not fitted")
        raw = self._raw(features)
        if self.calibrated_:
            return self.calibrator_.predict_proba(raw.reshape(-1, 1))[:, 1]
        return 1 / (1 + np.exp(-raw))

    def contributions(self, features: pd.DataFrame) -> np.ndarray:
        return _predict(self.model_, features, pred_contrib=True)


def count_labels(posts: pd.DataFrame, target: Target) -> np.ndarray:
    """log1p of the count column; NaN where the count is missing."""
    return np.log1p(posts[target.column].astype("Float64").astype(float).to_numpy())


def risk_labels(posts: pd.DataFrame, features: pd.DataFrame) -> tuple[np.ndarray, str]:
    """(labels with NaN where unknown, description of the label used)."""
    if "felt_fake" in posts and posts["felt_fake"].notna().any():
        return posts["felt_fake"].astype("Float64").astype(float).to_numpy(), RISK_LABEL_FELT_FAKE
    likes = np.log1p(posts["likes"].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    baseline = features["likes_baseline"].to_numpy(dtype=float)
    # No proxy label where either side is unknown (no earlier post, or the owner hid this post's likes).
    label = np.where(np.isnan(baseline) | np.isnan(likes), np.nan, (likes < baseline - PROXY_DROP).astype(float))
    return label, RISK_LABEL_PROXY
