"""What engage predicts: a registry of targets that training, evaluation, logging and serving loop over.

Each entry carries its behaviour: how its labels are made (and when it is skipped), its model, its metrics,
its plots, its summary rows and how its prediction is answered. A new count target is one `_count(...)` line.

* `likes`, `comments`, and the insight counts `impressions`, `reach`, `saves`, `shares`, `profile_visits`,
  `follows`, `link_clicks` (kind "count", each trained when the data has at least `MIN_LABELS` of them): LightGBM regressors on log1p counts, learned as the residual against
  a reference level: the account's trailing baseline (mean log1p count of its last posts) when it has one,
  else a population prior fitted on log1p followers. Two quantile models give the prediction interval.
* `authenticity_risk` (kind "risk"): a LightGBM classifier of the probability that the audience finds the
  post inauthentic, calibrated (Platt) on the validation slice. Label: `felt_fake` when the data set has
  it, else a proxy from outcomes (see `risk_labels`, explained in docs/model.md).
"""

from __future__ import annotations

import functools
import logging
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression

from engage.config import LightGBMSettings
from engage.data.schema import INSIGHT_COUNTS
from engage.model import evaluation as ev
from engage.model import plots

log = logging.getLogger(__name__)

#: Proxy risk label: a post whose likes fall below a third of the account's trailing baseline.
PROXY_DROP = math.log(3.0)
#: What the risk model learned from, in the user's words: stored with the model, shown with every score.
RISK_LABEL_FELT_FAKE = "the data set's felt_fake labels: whether the audience found a post inauthentic"
RISK_LABEL_PROXY = ("an engagement-drop proxy: posts whose likes fell below a third of the account's usual "
                    "(the data had no felt_fake labels)")


@dataclass(frozen=True)
class Target:
    """One thing engage predicts. The registry `TARGETS` holds one per name; training, evaluation, plots,
    the summary table, the bundle, the API and the studio loop over it, so a new count target is one entry."""

    name: str
    column: str  # the posts column the label comes from
    baseline_feature: str | None = None  # history feature holding the account's trailing log1p level
    #: feature -> +1/-1: what the literature says the prediction may only do as the feature grows. Small
    #: data sets cannot learn these directions reliably; stating them keeps the advice consistent.
    monotone: tuple[tuple[str, int], ...] = ()
    label: str = ""  # how the studio and the summary name it ("profile visits")
    goal: str = ""  # the creator's goal it measures, in the research's words ("awareness")
    description: str = ""  # what the number counts, for /docs and the studio
    kind: ClassVar[Literal["count", "risk"]]


@dataclass(frozen=True)
class CountTarget(Target):
    """A per-post count, learned on log1p as the residual over the account's trailing level (`CountModel`)."""

    kind: ClassVar[Literal["count", "risk"]] = "count"

    def labels(self, posts: pd.DataFrame, features: pd.DataFrame) -> tuple[np.ndarray, str, str | None]:
        """(log1p labels with NaN where unknown, how they were made, why the target is skipped or None)."""
        y = count_labels(posts, self)
        known = int((~np.isnan(y)).sum())
        if known == 0:
            return y, f"log1p({self.column})", f"the data set has no {self.column} counts"
        if known < MIN_LABELS:
            return y, f"log1p({self.column})", f"only {known} posts have {self.column} counts (at least {MIN_LABELS} needed)"
        return y, f"log1p({self.column})", None

    def make_model(self, params: LightGBMSettings, interval: float, seed: int) -> CountModel:
        return CountModel(self, params, interval, seed)

    def predict(self, model: CountModel, features: pd.DataFrame) -> dict[str, np.ndarray]:
        return model.predict_log1p(features)

    def answer(self, prediction: dict[str, np.ndarray], row: int = 0) -> dict[str, float]:
        """Expected, low and high as counts (the API's and the studio's numbers)."""
        return {k: round(float(np.expm1(max(v[row], 0.0))), 2) for k, v in prediction.items()}

    def evaluate(self, model: CountModel, features: pd.DataFrame, y: np.ndarray, posts: pd.DataFrame,
                 split: ev.Split, pairs: ev.DraftPairs | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Test metrics next to the account-baseline metrics, named `test_<name>_...` and `baseline_<name>_...`;
        with `pairs`, the draft-pair accuracy `test_<name>_draft_pairs_7d` and its pair count `..._n` (the
        account baseline scores two drafts alike: 0.5 by definition, no pair counted)."""
        test, fit_rows = split.test, np.concatenate([split.train, split.valid])
        accounts = posts["account"].to_numpy()[test]
        p = model.predict_log1p(features.iloc[test])
        baseline = ev.account_training_baseline(posts, y, fit_rows, test)
        # The trailing baseline is what the model starts from: the mean log1p count of the account's last posts
        # before each post (the training mean where the account has none yet). It moves with the account.
        trailing = features[self.baseline_feature].to_numpy(dtype=float)[test] if self.baseline_feature in features else baseline
        trailing = np.where(np.isnan(trailing), baseline, trailing)
        metrics = ev.count_metrics("test", self.name, accounts, y[test], p["expected"], baseline)
        metrics.update(ev.count_metrics("baseline", self.name, accounts, y[test], baseline, baseline))
        metrics.update(ev.count_metrics("trailing", self.name, accounts, y[test], trailing, baseline))
        metrics[f"test_{self.name}_interval_coverage"] = ev.interval_coverage(y[test], p["low"], p["high"])
        out = {"actual": y[test], "baseline": baseline, "trailing": trailing, **p}
        if pairs is not None and len(pairs.earlier):
            earlier = model.predict_log1p(features.iloc[pairs.earlier])["expected"]
            later = model.predict_log1p(pairs.later_features)["expected"]
            accuracy, n = ev.pair_accuracy(y[pairs.earlier], y[pairs.later], earlier, later)
            metrics[f"test_{self.name}_draft_pairs_7d"] = accuracy
            metrics[f"test_{self.name}_draft_pairs_7d_n"] = float(n)
            out |= {"pair_earlier": earlier, "pair_later": later}
        return metrics, out

    def figures(self, preds: dict[str, np.ndarray]) -> dict[str, Figure]:
        return {
            f"plots/predicted_vs_actual_{self.name}.png": plots.predicted_vs_actual(preds["actual"], preds["expected"], preds["baseline"], self.name),
            f"plots/residuals_{self.name}.png": plots.residuals(preds["actual"], preds["expected"], self.name),
        }

    def summary_rows(self, metrics: dict[str, float]) -> list[tuple[str, float, float | None, float | None]]:
        """(metric, model, account baseline, trailing baseline) for the terminal summary."""
        rows = []
        for kind in ("mae_log1p", "spearman", "spearman_within_account", "spearman_relative", "draft_pairs_7d",
                     "interval_coverage"):
            key = f"test_{self.name}_{kind}"
            if key in metrics:
                rows.append((key, metrics[key], metrics.get(f"baseline_{self.name}_{kind}"), metrics.get(f"trailing_{self.name}_{kind}")))
        return rows


@dataclass(frozen=True)
class RiskTarget(Target):
    """The probability that the audience finds a post inauthentic (`RiskModel`); metrics `test_risk_*`."""

    kind: ClassVar[Literal["count", "risk"]] = "risk"

    def labels(self, posts: pd.DataFrame, features: pd.DataFrame) -> tuple[np.ndarray, str, str | None]:
        y, described = risk_labels(posts, features)
        known = y[~np.isnan(y)]
        if len(known) < MIN_LABELS or len(set(known)) < 2:
            return y, described, f"too few risk labels ({len(known)} known, {int(np.nansum(known))} positive)"
        return y, described, None

    def make_model(self, params: LightGBMSettings, interval: float, seed: int) -> RiskModel:
        return RiskModel(params, seed)

    def predict(self, model: RiskModel, features: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(features)

    def answer(self, prediction: np.ndarray, row: int = 0) -> float:
        return float(prediction[row])

    def evaluate(self, model: RiskModel, features: pd.DataFrame, y: np.ndarray, posts: pd.DataFrame,
                 split: ev.Split, pairs: ev.DraftPairs | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        prob = model.predict_proba(features.iloc[split.test])
        actual = y[split.test]
        metrics = {"test_risk_auc": ev.risk_auc(actual, prob), "test_risk_ece": ev.expected_calibration_error(actual, prob)}
        return metrics, {"actual": actual, "probability": prob}

    def figures(self, preds: dict[str, np.ndarray]) -> dict[str, Figure]:
        return {"plots/risk_calibration.png": plots.calibration(preds["actual"], preds["probability"])}

    def summary_rows(self, metrics: dict[str, float]) -> list[tuple[str, float, float | None, float | None]]:
        return [(key, metrics[key], None, None) for key in ("test_risk_auc", "test_risk_ece") if key in metrics]


#: Fewest known labels a target trains on; below it the target is skipped with the reason.
MIN_LABELS = 20

#: Audiences punish hashtag stuffing and over-long captions, relative to the account's habit and in raw
#: counts (an account known only by the history sent with a draft has a noisy habit, and the advice in
#: `draft_flags` speaks of both), and the same post on other feeds the same day.
_ENGAGEMENT_MONOTONE = (("hashtags_z", -1), ("caption_chars_z", -1), ("hashtags", -1), ("caption_chars", -1),
                        ("duplicate_image_accounts", -1), ("duplicate_caption_accounts", -1))
#: For the insight counts only the same-day duplicate is stated: hashtags bring discovery (impressions "from
#: hashtags") as well as costing engagement, so their direction is left to the data.
_DUPLICATE_MONOTONE = (("duplicate_image_accounts", -1), ("duplicate_caption_accounts", -1))
#: Sponsored posts feel fake with #paid/#ad, brand messaging, the same post elsewhere the same day, and a
#: photo unlike the feed (59% / 36% / 31% / 31% / 34% in the literature; docs/demo-data.md).
_RISK_MONOTONE = (("has_ad", 1), ("has_paid", 1), ("has_sponsored", 1), ("has_paid_partnership", 1), ("brand_phrases", 1),
                  ("duplicate_image_accounts", 1), ("duplicate_caption_accounts", 1), ("image_feed_similarity", -1))


def _count(name: str, label: str, goal: str, description: str, monotone: tuple[tuple[str, int], ...] = _DUPLICATE_MONOTONE) -> CountTarget:
    return CountTarget(name, name, f"{name}_baseline", monotone, label, goal, description)


TARGETS: dict[str, Target] = {
    "likes": _count("likes", "likes", "engagement", "likes on the post", _ENGAGEMENT_MONOTONE),
    "comments": _count("comments", "comments", "engagement", "comments on the post", _ENGAGEMENT_MONOTONE),
    "impressions": _count("impressions", "impressions", "awareness", "how often the post is seen (Meta now reports views)"),
    "reach": _count("reach", "reach", "awareness", "how many accounts see the post"),
    "saves": _count("saves", "saves", "content quality", "saved to come back to: content worth keeping"),
    "shares": _count("shares", "shares", "content quality", "sent on to others: content worth passing on"),
    "profile_visits": _count("profile_visits", "profile visits", "call to action", "visits to your profile from the post"),
    "follows": _count("follows", "follows", "fan-base growth", "new followers from the post"),
    "link_clicks": _count("link_clicks", "link clicks", "call to action", "taps on your link from the post"),
    "authenticity_risk": RiskTarget("authenticity_risk", "felt_fake", monotone=_RISK_MONOTONE, label="authenticity risk",
                                    goal="trust", description="probability that the audience finds the post fake"),
}
#: The count targets, in registry order: what /v1/score returns and what /v1/compare can rank by.
COUNT_TARGETS: tuple[str, ...] = tuple(name for name, t in TARGETS.items() if t.kind == "count")


def model_columns(target: Target, columns: pd.Index | list[str]) -> list[str]:
    """The features a target's model sees: all of them except the other insight counts' trailing levels.

    Each count model starts from its own trailing level; the likes, comments and risk models keep the
    features they had before the insight counts. The seven extra levels move together with the likes level,
    and on small data they let the trees fit noise (smoke demo, likes relative Spearman: 0.014 with them).
    """
    others = {f"{count}_baseline" for count in INSIGHT_COUNTS} - {target.baseline_feature}
    return [c for c in columns if c not in others]


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
        columns = model_columns(TARGETS["authenticity_risk"], train.columns)
        train, valid = train[columns], valid[columns]
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
