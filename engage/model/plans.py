"""What the estimators share (engage/model/estimators.py): the target they are fitted for (`ModelSpec`), the
columns its model sees, the LightGBM parameters made from the settings, and the `FitPlan` of one fit stage
that an engine fits (`fit_plan` runs every stage)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import lightgbm as lgb
import pandas as pd

from engage.config import LightGBMSettings
from engage.data.schema import INSIGHT_COUNTS
from engage.engine import LightGBMJob


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


def _lgb_params(params: LightGBMSettings, seed: int, target: ModelSpec | None = None,
                columns: list[str] | None = None) -> dict:
    out = params.model_dump()
    out.pop("early_stopping_rounds")
    out = {**out, "random_state": seed, "verbose": -1}
    if target is not None and target.monotone and columns is not None:
        directions = dict(target.monotone)
        out["monotone_constraints"] = [directions.get(c, 0) for c in columns]
        out["monotone_constraints_method"] = "advanced"
    return out


@dataclass
class FitPlan:
    """One stage of an estimator's `fit`: the LightGBM jobs an engine fits, and the learned values computed
    on the way (set on the estimator, with the fitted estimators, by `finish` of the last stage).

    An estimator fitted in stages (a count model: the account's level, then the draft's uplift on the level's
    out-of-fold residuals) plans one stage at a time: `finish(fitted, plan)` of an earlier stage sets nothing
    on the estimator and puts the following stage's plan in `plan.next`; a caller fits stages until `next`
    is None (`fit`, `engage.training.fit_targets`)."""

    jobs: list[LightGBMJob]
    learned: dict[str, Any]
    stage: str = "fit"  # which stage these jobs are ("level", "uplift", "interval"; "fit": one stage)
    # what the following stages need (data, folds): not learned
    carry: dict[str, Any] = field(default_factory=dict)
    next: FitPlan | None = None  # set by `finish` when another stage follows


def fit_plan(estimator: Any, plan: FitPlan, fit_lightgbm: FitLightGBM) -> Any:
    """Every stage of `plan` fitted with `fit_lightgbm` and finished on `estimator`, which is returned."""
    current: FitPlan | None = plan
    while current is not None:
        estimator = estimator.finish(fit_lightgbm(current.jobs), current)
        current = current.next
    return estimator


#: Fits a list of jobs and returns their fitted estimators in order (`fit_locally`, or an engine's).
FitLightGBM = Callable[[list[LightGBMJob]], list[lgb.LGBMModel]]
