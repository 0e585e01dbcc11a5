"""How right engage was for published drafts: predicted
against actual, next to the account's trailing average.

    accuracy(store, account="anna.bakes")  ->  {"targets":
    [{"target": "likes", "mae": ..., ...}], "points": [...]}

For each count with recorded outcomes: the mean absolute error of engage's expected count; that of what the
account's own trailing average said at scoring time (the model's `<count>_baseline` feature, the mean log1p
count of the account's last posts, turned back into a count; from earlier recorded outcomes when the model
gave no features); the share of actual counts inside the prediction interval; and, over every pair of the
account's published drafts with different outcomes, how often the better one was predicted higher (and, of
comparisons with two or more drafts published, how often the top-ranked one did best). Each post is compared
at its latest recorded age, or at the age asked for.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

from engage.data.schema import OUTCOME_COUNTS
from engage.outcomes.store import OutcomeStore

#: Earlier recorded posts the fallback trailing average spans (the model's history window by default).
TRAILING_POSTS = 24


def comparable(frame: pd.DataFrame, age_hours: float | None = None) -> pd.DataFrame:
    """One row per published score: its record at `age_hours`, or its latest one."""
    if frame.empty:
        return frame
    if age_hours is not None:
        return frame[np.isclose(frame["age_hours"].astype(float), age_hours)].reset_index(drop=True)
    latest = frame.sort_values(["score_id", "age_hours"]).groupby("score_id", sort=False).tail(1)
    return latest.sort_values("posted_at", kind="stable").reset_index(drop=True)


def points(frame: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per published score and count with an actual and a prediction."""
    rows = []
    for target in OUTCOME_COUNTS:
        if target not in frame:
            continue
        for record in frame.itertuples(index=False):
            actual = getattr(record, target)
            predicted = (record.prediction or {}).get(target)
            if actual is None or pd.isna(actual) or not predicted:
                continue
            rows.append({
                "score_id": record.score_id, "post_id": record.post_id, "account": record.account,
                "posted_at": record.posted_at, "age_hours": float(record.age_hours), "target": target,
                "expected": float(predicted["expected"]), "low": _maybe(predicted.get("low")),
                "high": _maybe(predicted.get("high")), "actual": float(actual),
                "trailing": _feature_trailing(record.features, target),
                "compare_id": record.compare_id, "rank": record.rank, "goal": record.goal,
            })
    long = pd.DataFrame(rows)
    if long.empty:
        return long
    return _fill_trailing(long.sort_values(["target", "account", "posted_at"],
                                           kind="stable").reset_index(drop=True))


def _maybe(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _feature_trailing(features: dict[str, Any] | None, target: str) -> float | None:
    value = (features or {}).get(f"{target}_baseline")
    return None if value is None else float(np.expm1(value))


def _fill_trailing(long: pd.DataFrame) -> pd.DataFrame:
    """Where the model gave no trailing level, the mean of
    the account's earlier recorded actuals of the count."""
    trailing = long["trailing"].astype(float).to_numpy().copy()
    for _, group in long.groupby(["target", "account"], sort=False):
        actual = group["actual"].to_numpy(dtype=float)
        for position, index in enumerate(group.index):
            if np.isnan(trailing[index]) and position > 0:
                trailing[index] = float(actual[max(0, position - TRAILING_POSTS):position].mean())
    long["trailing"] = [None if np.isnan(v) else float(v) for v in trailing]
    return long


def _pairs_right(group: pd.DataFrame) -> tuple[int, float]:
    expected, actual = group["expected"].to_numpy(), group["actual"].to_numpy()
    i, j = np.triu_indices(len(group), k=1)
    different = actual[i] != actual[j]
    i, j = i[different], j[different]
    if not len(i):
        return 0, 0.0
    agree = np.sign(expected[i] - expected[j]) * np.sign(actual[i] - actual[j])
    return len(i), float(np.sum(agree > 0) + 0.5 * np.sum(agree == 0))


def summarise(long: pd.DataFrame) -> list[dict[str, Any]]:
    """The figures per count (see the module docstring)."""
    out: list[dict[str, Any]] = []
    if long.empty:
        return out
    for target, rows in long.groupby("target", sort=False):
        error = (rows["expected"] - rows["actual"]).abs()
        with_trailing = rows[rows["trailing"].notna()]
        with_interval = rows[rows["low"].notna() & rows["high"].notna()]
        pairs, right = 0, 0.0
        for _, group in rows.groupby("account"):
            n, r = _pairs_right(group)
            pairs, right = pairs + n, right + r
        compared, won = 0, 0
        goal_rows = rows[rows["compare_id"].notna() & (rows["goal"] == target)]
        for _, group in goal_rows.groupby("compare_id"):
            if len(group) >= 2 and group["actual"].nunique() > 1:
                compared += 1
                won += int(group.sort_values("rank")["actual"].iloc[0] == group["actual"].max())
        out.append({
            "target": target, "posts": int(len(rows)), "mae": float(error.mean()),
            "baseline_mae": float(
                (with_trailing["trailing"].astype(float) - with_trailing["actual"]).abs().mean())
            if len(with_trailing) else None,
            "coverage": float(((with_interval["low"] <= with_interval["actual"]) &
                (with_interval["actual"] <= with_interval["high"])).mean()) if len(with_interval) else None,
            "ranked_pairs": pairs, "ranked_right": right / pairs if pairs else None,
            "compared_right": won / compared if compared else None,
        })
    return out


def accuracy(store: OutcomeStore, account: str | None = None,
             age_hours: float | None = None) -> dict[str, Any]:
    """The /v1/accuracy answer for `account` (None: every account)."""
    frame = comparable(store.outcomes_frame(account), age_hours)
    long = points(frame)
    scored = len(store.scores_frame(account))
    shown = [] if long.empty else long.drop(columns=["account", "compare_id", "rank",
                                                     "goal"]).to_dict(orient="records")
    return {"account": account, "age_hours": age_hours, "scored": scored, "published": int(len(frame)),
            "targets": summarise(long), "points": shown}


def accuracy_figure(long: pd.DataFrame, title: str) -> Any:
    """Predicted against actual, one panel per count, log axes: engage's expected count with its interval,
    the trailing average in grey, and the line where prediction equals outcome."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(long["target"])) if not long.empty else ["likes"]
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 4), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        rows = long[long["target"] == target] if not long.empty else long
        if rows.empty:
            ax.text(0.5, 0.5, "no published drafts yet", ha="center", va="center", transform=ax.transAxes)
        else:
            actual = rows["actual"].to_numpy(float) + 1
            expected = rows["expected"].to_numpy(float) + 1
            low = rows["low"].astype(float).fillna(rows["expected"]).to_numpy() + 1
            high = rows["high"].astype(float).fillna(rows["expected"]).to_numpy() + 1
            ax.errorbar(actual, expected,
                        yerr=[np.maximum(expected - low, 0), np.maximum(high - expected, 0)],
                        fmt="o", color="#c0392b", ecolor="#e6b0aa", ms=4, label="engage (with interval)")
            trailing = rows["trailing"].astype(float).to_numpy() + 1
            ax.plot(actual, trailing, "s", color="#7f8c8d", ms=3, alpha=0.7, label="trailing average")
            lo = float(np.nanmin([actual.min(), expected.min(), np.nanmin(low)]))
            hi = float(np.nanmax([actual.max(), expected.max(), np.nanmax(high)]))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="prediction = outcome")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=7, loc="upper left")
        ax.set_xlabel(f"actual {target} (+1)")
        ax.set_ylabel(f"predicted {target} (+1)")
        ax.set_title(target)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_png(store: OutcomeStore, account: str | None = None, age_hours: float | None = None) -> bytes:
    import matplotlib.pyplot as plt

    long = points(comparable(store.outcomes_frame(account), age_hours))
    fig = accuracy_figure(long, f"engage vs outcomes: {account or 'every account'}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
