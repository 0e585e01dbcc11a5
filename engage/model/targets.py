"""What engage predicts: a registry of targets that training, evaluation, logging and serving loop over.

Each entry carries its behaviour: how its labels are made (and when it is skipped), its model, its metrics,
its plots, its summary rows and how its prediction is answered. A new count target is one `_count(...)` line.
The estimators themselves (`CountModel`, `RiskModel`) live in engage/model/estimators.py.

* `likes`, `comments`, and the insight counts `impressions`, `reach`, `saves`, `shares`, `profile_visits`,
  `follows`, `link_clicks` (kind "count", each trained when the data has at least `MIN_LABELS` of them): the
  account's level (LightGBM on log1p counts from its history, followers and the time, cross-fitted) plus the
  draft's uplift (LightGBM on the level's out-of-fold residuals); the prediction interval is split-conformal
  on the validation posts' errors from a level that never saw their period.
* `authenticity_risk` (kind "risk"): a LightGBM classifier of the probability that the audience finds the
  post inauthentic, calibrated (Platt) on the validation slice. Label: `felt_fake` when the data set has
  it, else a proxy from outcomes (see `risk_labels`, explained in docs/model.md).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from engage.config import LightGBMSettings
from engage.model import evaluation as ev
from engage.model import plots

# CountModel and RiskModel are also named here because bundles pickled before the estimators had their own
# module refer to them as engage.model.targets.CountModel / RiskModel.
from engage.model.estimators import CountModel, RiskModel

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

    # What every kind of target does (CountTarget, RiskTarget); the registry's users call these.
    def labels(self, posts: pd.DataFrame, features: pd.DataFrame) -> tuple[np.ndarray, str, str | None]:
        raise NotImplementedError

    def make_model(self, params: LightGBMSettings, interval: float, seed: int, **options: Any) -> Any:
        raise NotImplementedError

    def predict(self, model: Any, features: pd.DataFrame) -> Any:
        raise NotImplementedError

    def answer(self, prediction: Any, row: int = 0) -> Any:
        raise NotImplementedError

    def evaluate(self, model: Any, features: pd.DataFrame, y: np.ndarray, posts: pd.DataFrame,
                 split: ev.Split,
                 pairs: ev.DraftPairs | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        raise NotImplementedError

    def figures(self, preds: dict[str, np.ndarray]) -> dict[str, Figure]:
        raise NotImplementedError

    def summary_rows(self, metrics: dict[str, float]) -> list[tuple[str, float, float | None, float | None]]:
        raise NotImplementedError


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
            return y, f"log1p({self.column})", (f"only {known} posts have {self.column} "
                                                f"counts (at least {MIN_LABELS} needed)")
        return y, f"log1p({self.column})", None

    def make_model(self, params: LightGBMSettings, interval: float, seed: int, **options: Any) -> CountModel:
        """`options`: CountModel's folds, folds_by, objective, drop and level_params (train.level_folds,
        level_folds_by, uplift_objective, drop_features, level)."""
        return CountModel(self, params, interval, seed, **options)

    def predict(self, model: CountModel, features: pd.DataFrame) -> dict[str, np.ndarray]:
        return model.predict_log1p(features)

    def answer(self, prediction: dict[str, np.ndarray], row: int = 0) -> dict[str, float]:
        """Expected, low and high as counts (the API's and the studio's numbers); with the level and uplift,
        `usual` (what a post of this account would get now, as a count) and `uplift_percent` (what this draft
        adds to it: (1 + expected) / (1 + usual) - 1, in percent)."""
        out = {k: round(float(np.expm1(max(prediction[k][row], 0.0))),
                        2) for k in ("expected", "low", "high")}
        if "level" in prediction:
            out["usual"] = round(float(np.expm1(max(prediction["level"][row], 0.0))), 2)
            out["uplift_percent"] = round(float(np.expm1(prediction["uplift"][row])) * 100, 1)
        return out

    def evaluate(self, model: CountModel, features: pd.DataFrame, y: np.ndarray, posts: pd.DataFrame,
                 split: ev.Split,
                 pairs: ev.DraftPairs | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Test metrics next to the account-baseline metrics, named `test_<name>_...` and
        `baseline_<name>_...`; with `pairs`, the draft-pair accuracy `test_<name>_draft_pairs_7d` and its pair
        count `..._n` (the account baseline scores two drafts alike: 0.5 by definition, no pair counted)."""
        test, fit_rows = split.test, np.concatenate([split.train, split.valid])
        accounts = posts["account"].to_numpy()[test]
        p = model.predict_log1p(features.iloc[test])
        baseline = ev.account_training_baseline(posts, y, fit_rows, test)
        # The trailing baseline is what the model starts from: the mean log1p count of the account's last
        # posts before each post (the training mean where the account has none yet). It moves with the
        # account.
        trailing = features[self.baseline_feature].to_numpy(dtype=float)[
            test] if self.baseline_feature in features else baseline
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
            f"plots/predicted_vs_actual_{self.name}.png": plots.predicted_vs_actual(
                preds["actual"], preds["expected"], preds["baseline"], self.name),
            f"plots/residuals_{self.name}.png": plots.residuals(preds["actual"], preds["expected"],
                                                                self.name),
        }

    def summary_rows(self, metrics: dict[str, float]) -> list[tuple[str, float, float | None, float | None]]:
        """(metric, model, account baseline, trailing baseline) for the terminal summary."""
        rows = []
        for kind in ("mae_log1p", "spearman", "spearman_within_account", "spearman_relative",
                     "draft_pairs_7d",
                     "interval_coverage"):
            key = f"test_{self.name}_{kind}"
            if key in metrics:
                rows.append((key, metrics[key], metrics.get(f"baseline_{self.name}_{kind}"),
                             metrics.get(f"trailing_{self.name}_{kind}")))
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

    def make_model(self, params: LightGBMSettings, interval: float, seed: int, **options: Any) -> RiskModel:
        return RiskModel(params, seed, target=self, drop=options.get("drop", ()))

    def predict(self, model: RiskModel, features: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(features)

    def answer(self, prediction: np.ndarray, row: int = 0) -> float:
        return float(prediction[row])

    def evaluate(self, model: RiskModel, features: pd.DataFrame, y: np.ndarray, posts: pd.DataFrame,
                 split: ev.Split,
                 pairs: ev.DraftPairs | None = None) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        prob = model.predict_proba(features.iloc[split.test])
        actual = y[split.test]
        metrics = {"test_risk_auc": ev.risk_auc(actual, prob),
                   "test_risk_ece": ev.expected_calibration_error(actual, prob)}
        return metrics, {"actual": actual, "probability": prob}

    def figures(self, preds: dict[str, np.ndarray]) -> dict[str, Figure]:
        return {"plots/risk_calibration.png": plots.calibration(preds["actual"], preds["probability"])}

    def summary_rows(self, metrics: dict[str, float]) -> list[tuple[str, float, float | None, float | None]]:
        return [(key, metrics[key], None, None) for key in ("test_risk_auc",
                                                            "test_risk_ece") if key in metrics]


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
_RISK_MONOTONE = (("has_ad", 1), ("has_paid", 1), ("has_sponsored", 1), ("has_paid_partnership", 1),
                  ("brand_phrases", 1),
    ("duplicate_image_accounts", 1), ("duplicate_caption_accounts", 1), ("image_feed_similarity", -1))


def _count(name: str, label: str, goal: str, description: str,
           monotone: tuple[tuple[str, int], ...] = _DUPLICATE_MONOTONE) -> CountTarget:
    return CountTarget(name, name, f"{name}_baseline", monotone, label, goal, description)


TARGETS: dict[str, Target] = {
    "likes": _count("likes", "likes", "engagement", "likes on the post", _ENGAGEMENT_MONOTONE),
    "comments": _count("comments", "comments", "engagement", "comments on the post", _ENGAGEMENT_MONOTONE),
    "impressions": _count("impressions", "impressions", "awareness",
                          "how often the post is seen (Meta now reports views)"),
    "reach": _count("reach", "reach", "awareness", "how many accounts see the post"),
    "saves": _count("saves", "saves", "content quality", "saved to come back to: content worth keeping"),
    "shares": _count("shares", "shares", "content quality", "sent on to others: content worth passing on"),
    "profile_visits": _count("profile_visits", "profile visits", "call to action",
                             "visits to your profile from the post"),
    "follows": _count("follows", "follows", "fan-base growth", "new followers from the post"),
    "link_clicks": _count("link_clicks", "link clicks", "call to action", "taps on your link from the post"),
    "authenticity_risk": RiskTarget("authenticity_risk", "felt_fake", monotone=_RISK_MONOTONE,
                                    label="authenticity risk",
        goal="trust", description="probability that the audience finds the post fake"),
}
#: The count targets, in registry order: what /v1/score returns and what /v1/compare can rank by.
COUNT_TARGETS: tuple[str, ...] = tuple(name for name, t in TARGETS.items() if t.kind == "count")


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
    label = np.where(np.isnan(baseline) | np.isnan(likes), np.nan,
                     (likes < baseline - PROXY_DROP).astype(float))
    return label, RISK_LABEL_PROXY
