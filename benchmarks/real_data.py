"""engage against two simpler models on every real Instagram table in ../shared/data/real/, side by side.

Those tables have no licence, so they never enter the project: this script reads them from that path,
converts each to the canonical posts table in a temporary directory, and on the same time split (each
account's latest 20% of posts held out, `engage.model.evaluation.time_split`) trains and scores:

* **account baseline**: each account's mean log1p(likes) over its training posts (the metric baseline
  every engage run logs); its interval adds the 10% and 90% quantiles of the training residuals.
* **reference**: a plain LightGBM on trailing statistics of the account's earlier posts (`REFERENCE_COLUMNS`,
  defined in `reference_features` below and documented in docs/results.md), with two quantile models
  for its 80% interval. It is what a user could write in 40 lines, and what engage has to beat.
* **engage**: `engage.training.train`, the same code as `python train.py data.source=table`,
  with its own MLflow store (the demo registry is untouched).

None of the tables has images (their URLs expired) and none has a sponsored/felt_fake label, so image
features are empty and the authenticity-risk target falls back to its documented proxy label.
Caption embeddings go through the shared content-addressed cache (`features.cache_dir`, default
data/cache); `--cold-cache` uses an empty one, to time a first run.

    python benchmarks/real_data.py                               # every table, one table of figures
    python benchmarks/real_data.py --only large_accounts_16536   # one table
    python benchmarks/real_data.py --json results.json           # also write every metric as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
#: micro_reach_100 gives only "time since posted" (2-11 hours) and no scrape time: posts are placed that many
#: hours before this fixed reference, which keeps their order but not their true dates.
REACH_REFERENCE = pd.Timestamp("2020-01-01T00:00:00Z")


def micro_influencers(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    table = pd.DataFrame({
        "account": raw["account"], "post_id": raw["url"].str.rstrip("/").str.rsplit("/", n=1).str[-1],
        "posted_at": raw["datetime"], "caption": raw["caption"].fillna(""), "likes": raw["likes"],
        "comments": raw["comments"], "followers": raw["followers"], "is_video": raw["video_view_count"] > 0,
    })
    # The scrape holds some posts twice (re-scraped): keep the snapshot with the most likes, as the
    # Instaloader loader does, and say how many were merged.
    merged = table.sort_values(["likes", "comments"], ascending=False).drop_duplicates("post_id")
    print(f"{path.name}: {len(table) - len(merged)} duplicate snapshots merged (kept the highest counts)")
    return merged


def one_account(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    caption = raw["Caption"].fillna("") + "\n" + raw["Hashtags"].fillna("")
    return pd.DataFrame({
        "account": "one_account", "post_id": [f"post{i}" for i in range(len(raw))],
        # One post a day at most; noon UTC keeps the day when converted.
        "posted_at": pd.to_datetime(raw["Date"]).dt.strftime("%Y-%m-%dT12:00:00Z"),
        "caption": caption.str.strip(), "likes": raw["Likes"], "comments": raw["Comments"],
    })


def micro_reach(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    hours = raw["Time since posted"].str.extract(r"(\d+)")[0].astype(int)
    return pd.DataFrame({
        "account": raw["USERNAME"], "post_id": [f"reach{i}" for i in range(len(raw))],
        "posted_at": [(REACH_REFERENCE - pd.Timedelta(hours=int(h))).isoformat() for h in hours],
        "caption": raw["Caption"].fillna(""), "likes": raw["Likes"], "followers": raw["Followers"],
    })


#: Each table's converter to the canonical columns; None: already canonical (converted when it was stored),
#: copied as it is, since a pandas round trip of its captions (stray carriage returns) would change them.
TABLES: dict[str, Callable[[Path], pd.DataFrame] | None] = {
    "large_accounts_16536": None,
    "micro_influencers_519": micro_influencers,
    "one_account_insights_176": one_account,
    "micro_reach_100": micro_reach,
}

# --- the reference model ----------------------------------------------------------------------------------

REFERENCE_COLUMNS = [
    "likes_mean", "likes_last", "likes_second_last", "likes_mean_last3", "likes_median", "likes_max", "likes_std",
    "hours_since_previous", "days_since_first", "post_index",
    "log_followers", "hashtags", "mentions", "caption_chars", "is_video", "hour", "weekday",
]
_HASHTAG = re.compile(r"#\w+")
_MENTION = re.compile(r"@\w+")
LIGHTGBM = {"n_estimators": 2000, "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 20,
            "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "n_jobs": 2, "verbose": -1, "random_state": 7}


def reference_features(posts: pd.DataFrame) -> pd.DataFrame:
    """`REFERENCE_COLUMNS` of every post, from the account's earlier posts in table order.

    "Earlier" is every post before it in the canonical order (account, posted_at, post_id), as a plain
    `groupby("account").shift()` script sees it: two posts on the same day (day-precision dates) see the
    one with the smaller post_id as earlier. Trailing statistics are over log1p(likes) of earlier posts
    whose likes are known; hours since the previous post and days since the first use every earlier post.
    """
    log_likes = np.log1p(posts["likes"].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    hours = posts["posted_at"].astype("int64").to_numpy() / 3.6e12
    out = np.full((len(posts), 10), np.nan)
    for index in posts.groupby("account", sort=False).indices.values():
        for k, row in enumerate(index):
            earlier = log_likes[index[:k]]
            known = earlier[~np.isnan(earlier)]
            out[row, 9] = k
            if k:
                out[row, 7] = hours[row] - hours[index[k - 1]]
                out[row, 8] = (hours[row] - hours[index[0]]) / 24
            if len(known):
                out[row, :7] = [known.mean(), known[-1], known[-2] if len(known) > 1 else np.nan, known[-3:].mean(),
                                np.median(known), known.max(), known.std(ddof=1) if len(known) > 1 else np.nan]
    frame = pd.DataFrame(out, columns=REFERENCE_COLUMNS[:10], index=posts.index)
    captions = posts["caption"].tolist()
    frame["log_followers"] = np.log1p(posts["followers"].astype("Float64").to_numpy(dtype=float, na_value=np.nan))
    frame["hashtags"] = [len(_HASHTAG.findall(c)) for c in captions]
    frame["mentions"] = [len(_MENTION.findall(c)) for c in captions]
    frame["caption_chars"] = [len(c) for c in captions]
    frame["is_video"] = posts["is_video"].astype(float).to_numpy()
    frame["hour"] = posts["posted_at"].dt.hour.to_numpy(dtype=float)
    frame["weekday"] = posts["posted_at"].dt.day_of_week.to_numpy(dtype=float)
    return frame


def reference_predictions(posts: pd.DataFrame, y: np.ndarray, split, interval: float) -> dict[str, np.ndarray]:
    """Expected log1p(likes) of the test posts with the interval, from LightGBM on `reference_features`."""
    import lightgbm as lgb

    features = reference_features(posts)
    train = split.train[~np.isnan(y[split.train])]
    valid = split.valid[~np.isnan(y[split.valid])]
    if len(valid) < 5:  # as engage does for tiny tables: early-stop on the tail of the training rows
        train, valid = train[: int(len(train) * 0.85)], train[int(len(train) * 0.85):]
    alpha = (1 - interval) / 2
    out = {}
    for key, objective in (("expected", {"objective": "l2"}), ("low", {"objective": "quantile", "alpha": alpha}),
                           ("high", {"objective": "quantile", "alpha": 1 - alpha})):
        model = lgb.LGBMRegressor(**objective, **LIGHTGBM)
        model.fit(features.iloc[train], y[train], eval_X=(features.iloc[valid],), eval_y=(y[valid],),
                  callbacks=[lgb.early_stopping(50, verbose=False)])
        out[key] = model.predict(features.iloc[split.test])
    out["low"], out["high"] = np.minimum(out["low"], out["expected"]), np.maximum(out["high"], out["expected"])
    return out


def baseline_predictions(posts: pd.DataFrame, y: np.ndarray, split, interval: float) -> dict[str, np.ndarray]:
    from engage.model import evaluation as ev

    fit_rows = np.concatenate([split.train, split.valid])
    expected = ev.account_training_baseline(posts, y, fit_rows, split.test)
    residuals = y[fit_rows] - ev.account_training_baseline(posts, y, fit_rows, fit_rows)
    low, high = np.nanquantile(residuals, [(1 - interval) / 2, (1 + interval) / 2])
    return {"expected": expected, "low": expected + low, "high": expected + high}


def scores(posts: pd.DataFrame, y: np.ndarray, split, predicted: dict[str, np.ndarray]) -> dict[str, float]:
    """The same metric definitions every engage run logs (engage.model.evaluation)."""
    from engage.model import evaluation as ev

    test = split.test
    baseline = ev.account_training_baseline(posts, y, np.concatenate([split.train, split.valid]), test)
    metrics = ev.count_metrics("test", "likes", posts["account"].to_numpy()[test], y[test], predicted["expected"], baseline)
    return {
        "mae_log1p": metrics["test_likes_mae_log1p"], "spearman": metrics["test_likes_spearman"],
        "spearman_relative": metrics["test_likes_spearman_relative"],
        "interval_coverage": ev.interval_coverage(y[test], predicted["low"], predicted["high"]),
    }


def run_table(name: str, table: Path, work: Path, cache_dir: str, overrides: list[str]) -> dict[str, dict[str, float]]:
    from engage.config import load_settings
    from engage.data import load_posts
    from engage.model import evaluation as ev
    from engage.model.targets import TARGETS, count_labels
    from engage.training import train

    settings = load_settings(ROOT / "configs" / "default.yaml", [
        "data.source=table", f"data.path={table}", f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
        f"tracking.experiment=engage-real-{name}", f"tracking.registered_model=engage-real-{name}",
        f"features.cache_dir={cache_dir}", *overrides,
    ])
    posts = load_posts("table", table)
    split = ev.time_split(posts, settings.train.test_fraction, settings.train.valid_fraction)
    y = count_labels(posts, TARGETS["likes"])
    rows: dict[str, dict[str, float]] = {}
    for model, predict in (("account baseline", baseline_predictions), ("reference", reference_predictions)):
        started = time.perf_counter()
        predicted = predict(posts, y, split, settings.train.interval)
        rows[model] = {**scores(posts, y, split, predicted), "seconds": time.perf_counter() - started}
    started, cpu_started = time.perf_counter(), time.process_time()
    result = train(settings, progress=False)
    m = result.metrics
    rows["engage"] = {
        "mae_log1p": m["test_likes_mae_log1p"], "spearman": m["test_likes_spearman"],
        "spearman_relative": m["test_likes_spearman_relative"], "interval_coverage": m["test_likes_interval_coverage"],
        "seconds": time.perf_counter() - started,
        # CPU seconds of every thread of this process: what the run costs whatever the neighbours' load.
        "cpu_seconds": time.process_time() - cpu_started,
        "stage_seconds": result.seconds,
    }
    for key in ("mae_log1p", "spearman"):  # the same split and labels, so engage's baseline must agree
        assert abs(m[f"baseline_likes_{key}"] - rows["account baseline"][key]) < 1e-9, key
    print(f"engage on {name}: {rows['engage']['cpu_seconds']:.0f} CPU seconds; stage seconds: "
          + ", ".join(f"{k.removeprefix('seconds_')} {v:.1f}" for k, v in result.seconds.items()))
    return rows


def markdown(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| data set | model | MAE(log1p) | Spearman | relative Spearman | interval coverage | seconds |",
             "|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        if "error" in rows:
            lines.append(f"| {name} | error: {rows['error']} | | | | | |")
            continue
        for model, r in rows.items():
            lines.append(f"| {name} | {model} | {r['mae_log1p']:.3f} | {r['spearman']:.3f} | {r['spearman_relative']:.3f} "
                         f"| {r['interval_coverage']:.3f} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=list(TABLES), action="append", help="this table only (repeatable)")
    parser.add_argument("--real-dir", type=Path, default=REAL, help="where the real tables are (default ../shared/data/real)")
    parser.add_argument("--cold-cache", action="store_true", help="embed captions into an empty cache (time a first run)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value", help="engage config overrides, e.g. train.lightgbm.num_leaves=31")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache_dir = str(work / "cache") if args.cold_cache else str(ROOT / "data" / "cache")
        for name, convert in TABLES.items():
            if args.only and name not in args.only:
                continue
            source = args.real_dir / f"{name}.csv"
            if not source.is_file():
                print(f"{source} not found; skipping", file=sys.stderr)
                continue
            table = work / f"{name}.csv"
            if convert is None:
                shutil.copyfile(source, table)
            else:
                convert(source).to_csv(table, index=False)
            print(f"\n=== {name} ===", flush=True)
            try:
                results[name] = run_table(name, table, work, cache_dir, args.overrides)
            except Exception as e:  # report and go on: one table's failure must not hide the others
                results[name] = {"error": f"{type(e).__name__}: {e}"}
    print()
    print(markdown(results))
    print(f"(load average at the end: {' / '.join(f'{v:.1f}' for v in os.getloadavg())})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
