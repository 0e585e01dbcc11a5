"""Drift of recent drafts against the training data, column by column, with scipy's two-sample tests.

    drift_report(reference_posts, store.scores_frame())  ->  {"columns": [...], "drifted": [...], ...}

Evidently and NannyML were considered: Evidently 0.7 installs beside the pins but brings some 27 packages
(a second web framework, uvloop and httptools that uvicorn would then pick up, a telemetry client) for one
report, so the report is written here with scipy (docs/outcomes.md). The columns are what a draft and a
training post both have before any model runs: caption length, hashtags, posting hour and weekday (UTC),
followers (log), sponsored, and whether it has a photo. Numbers are compared with the two-sample
Kolmogorov-Smirnov test, yes/no columns with a chi-square test of the 2x2 table; a column drifts when the
test's p-value is under `ALPHA` with at least `MIN_ROWS` rows on each side.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.01
MIN_ROWS = 20
_HASHTAG = re.compile(r"#\w+")


def input_columns(captions: pd.Series, times: pd.Series, followers: pd.Series, sponsored: pd.Series,
                  has_photo: pd.Series) -> pd.DataFrame:
    times = pd.to_datetime(times, utc=True)
    return pd.DataFrame({
        "caption_chars": captions.fillna("").astype(str).str.len().astype(float),
        "hashtags": captions.fillna("").astype(str).map(lambda c: len(_HASHTAG.findall(c))).astype(float),
        "hour_utc": times.dt.hour.astype(float),
        "weekday": times.dt.weekday.astype(float),
        "log_followers": np.log1p(pd.to_numeric(followers, errors="coerce").astype(float)),
        "sponsored": sponsored.astype("boolean").astype(float),
        "has_photo": has_photo.astype(float),
    })


def posts_inputs(posts: pd.DataFrame) -> pd.DataFrame:
    """The input columns of training posts (the canonical posts table)."""
    return input_columns(posts["caption"], posts["posted_at"], posts["followers"], posts["sponsored"],
                         posts["image"].map(lambda v: isinstance(v, str) and bool(v)))


def drafts_inputs(scores: pd.DataFrame) -> pd.DataFrame:
    """The input columns of scored drafts (`OutcomeStore.scores_frame`); a draft's time is its planned time,
    else when it was scored."""
    times = scores["planned_at"].fillna(scores["created_at"]) if "planned_at" in scores else scores[
        "created_at"]
    return input_columns(scores["caption"], times, scores["followers"], scores["sponsored"],
                         scores["photo_sha256"].notna())


def drift_report(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, Any]:
    """Per column: the test, its statistic and p-value, the two means, and whether it drifted."""
    columns = []
    for name in reference.columns:
        ref = reference[name].dropna().to_numpy(dtype=float)
        cur = current[name].dropna().to_numpy(dtype=float) if name in current else np.array([])
        row: dict[str, Any] = {"column": name, "reference_rows": int(len(ref)), "current_rows": int(len(cur)),
                               "reference_mean": _mean(ref), "current_mean": _mean(cur)}
        if len(ref) < MIN_ROWS or len(cur) < MIN_ROWS:
            row.update(test=None, statistic=None, p_value=None, drifted=None,
                       note=f"fewer than {MIN_ROWS} rows on one side: not tested")
        elif name in ("sponsored", "has_photo"):
            table = np.array([[np.sum(ref == 1), np.sum(ref == 0)], [np.sum(cur == 1), np.sum(cur == 0)]])
            if (table.sum(axis=0) == 0).any():
                row.update(test="chi2", statistic=0.0, p_value=1.0, drifted=False,
                           note="one value on both sides")
            else:
                result = stats.chi2_contingency(table)
                row.update(test="chi2", statistic=float(result.statistic), p_value=float(result.pvalue),
                           drifted=bool(result.pvalue < ALPHA))
        else:
            result = stats.ks_2samp(ref, cur)
            row.update(test="ks", statistic=float(result.statistic), p_value=float(result.pvalue),
                       drifted=bool(result.pvalue < ALPHA))
        columns.append(row)
    return {"alpha": ALPHA, "reference_rows": int(len(reference)), "current_rows": int(len(current)),
            "columns": columns, "drifted": [c["column"] for c in columns if c.get("drifted")]}


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def drift_markdown(report: dict[str, Any]) -> str:
    lines = [f"# Drift of recent drafts against the training data (alpha {report['alpha']})", "",
             f"reference rows: {report['reference_rows']}; recent drafts: {report['current_rows']}", "",
             "| column | test | statistic | p-value | reference mean | drafts mean | drifted |",
             "|---|---|---|---|---|---|---|"]
    for c in report["columns"]:
        def f(value: Any) -> str:
            return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"
        lines.append(f"| {c['column']} | {c['test'] or '-'} | {f(c['statistic'])} | {f(c['p_value'])} | "
                     f"{f(c['reference_mean'])} | {f(c['current_mean'])} | "
                     f"{'yes' if c['drifted'] else ('no' if c['drifted'] is False else c.get('note', ''))} |")
    return "\n".join(lines) + "\n"
