"""engage against the account baseline and the shared reference model on every real table in
../shared/data/real/, with every feature family's worth measured by removing it, and a 90% paired bootstrap
interval on every difference.

Those tables have no licence, so they never enter the project: this script reads them from that path,
converts each to the canonical posts table in a temporary directory and, per table:

* runs **the shared reference** itself (`../shared/reference/reference_model.py TABLE --predictions OUT`): its
  per-post predictions give its MAE and relative Spearman on the same test posts (each account's latest 20%,
  the same rule as engage's split: the script checks that the two test sets are the same posts), and its own
  printed `reference_draft_pairs_7d` is its draft-pair accuracy (it prints no per-pair results, so that one
  figure has no interval);
* computes the **account baseline** (each account's mean log1p(likes) over its training posts: 0.5 on draft
  pairs by definition, as it scores two drafts alike);
* fits **engage** (`engage.training.featurize`, `fit_targets`, `evaluate`: the code `python train.py`
  runs, likes only, no MLflow) once on its feature table, then refits only the trees with each feature family
  removed (`train.drop_features`, `engage.features.pipeline.FEATURE_FAMILIES`): nothing is embedded twice.

Metrics: draft-pair accuracy (two test posts of one account at most 7 days apart, both scored as drafts with
the history the earlier had; ties dropped), relative Spearman (against each account's training mean), MAE of
log1p(likes), 80% interval coverage. Each difference against engage comes with a 90% interval from a paired
bootstrap over accounts (the same resampled accounts for both sides; 1,000 resamples).

    python benchmarks/real_data.py                               # every table, one table of figures
    python benchmarks/real_data.py --only large_accounts_16536   # one table
    python benchmarks/real_data.py --no-ablations                # engage, reference and baseline only
    python benchmarks/real_data.py --json results.json           # also write every figure as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
REFERENCE = ROOT.parent / "shared" / "reference" / "reference_model.py"
#: micro_reach_100 gives only "time since posted" (2-11 hours) and no scrape time: posts are placed that many
#: hours before this fixed reference, which keeps their order but not their true dates.
REACH_REFERENCE = pd.Timestamp("2020-01-01T00:00:00Z")
#: Resamples of the paired bootstrap over accounts, and its interval.
BOOTSTRAP = 1000
LEVEL = 0.90


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
#: Instaloader dumps (with photos): read by engage as they
#: come; the reference gets the posts engage loads, as CSV.
DUMPS = ("celeb_dump_200",)
REFERENCE_CSV_COLUMNS = ["account", "post_id", "posted_at", "caption", "likes", "followers", "is_video"]


# --- the models -------------------------------------------------------------------------------------------

def run_reference(table: Path, work: Path) -> tuple[dict, pd.DataFrame]:
    """The shared reference script on `table`: its printed JSON and its per-post predictions."""
    out = work / f"{table.stem}.reference.csv"
    done = subprocess.run([sys.executable, str(REFERENCE), str(table), "--predictions", str(out)],
                          capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the reference failed on {table.name}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), pd.read_csv(out)


def engage_variants(settings, posts: pd.DataFrame,
                    families: list[str | None]) -> tuple[object, dict[str, dict]]:
    """engage's feature table once, then one fit per variant (None: every family; a name: that family
    removed). Returns the featurized data and, per variant, its metrics and its likes predictions."""
    from engage.training import draft_pairs, evaluate, featurize, fit_targets

    data = featurize(settings, posts, progress=False)
    pairs = draft_pairs(data.pipeline, data.posts, data.vectors, data.features, data.split.test)
    out = {}
    for family in families:
        started = time.perf_counter()
        variant = settings.model_copy(deep=True)
        variant.train.drop_features = [] if family is None else [family]
        models = fit_targets(variant, data.features, data.labels, data.split)
        metrics, preds = evaluate(data.posts, data.features, data.labels, models, data.split, pairs)
        out["engage" if family is None else f"engage - {family}"] = {
            "metrics": metrics, "preds": preds["likes"], "seconds": time.perf_counter() - started}
        print(f"      {'engage' if family is None else 'without ' + family}: draft pairs "
              f"{metrics.get('test_likes_draft_pairs_7d', float('nan')):.3f}, relative Spearman "
              f"{metrics['test_likes_spearman_relative']:.3f} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    return (data, pairs), out


# --- metrics and the paired bootstrap -----------------------------------------------------------------------

class Scored:
    """One model's per-post and per-pair results on the
    test posts, for metrics on any resample of accounts."""

    def __init__(self, accounts: np.ndarray, actual: np.ndarray, baseline: np.ndarray, expected: np.ndarray,
                 low: np.ndarray | None, high: np.ndarray | None, pair_accounts: np.ndarray | None = None,
                 pair_right: np.ndarray | None = None, pair_counted: np.ndarray | None = None):
        self.accounts, self.actual, self.baseline, self.expected = accounts, actual, baseline, expected
        self.low, self.high = low, high
        self.pair_accounts, self.pair_right, self.pair_counted = pair_accounts, pair_right, pair_counted

    def metrics(self, posts: np.ndarray | None = None, pairs: np.ndarray | None = None) -> dict[str, float]:
        from engage.model import evaluation as ev

        take = slice(None) if posts is None else posts
        actual, expected, baseline = self.actual[take], self.expected[take], self.baseline[take]
        out = {"mae_log1p": float(np.mean(np.abs(actual - expected))),
               "spearman_relative": ev.spearman(actual - baseline, expected - baseline)}
        if self.low is not None:
            out["interval_coverage"] = ev.interval_coverage(actual, self.low[take], self.high[take])
        if self.pair_right is not None:
            pick = slice(None) if pairs is None else pairs
            counted = self.pair_counted[pick]
            out["draft_pairs_7d"] = float(self.pair_right[pick][counted].mean()) if counted.any() else float(
                "nan")
            out["draft_pairs_n"] = int(counted.sum())
        return out


def bootstrap_differences(models: dict[str, Scored], against: str,
                          seed: int = 0) -> dict[str, dict[str, tuple[float, float]]]:
    """90% intervals of (model - `against`) for every metric, resampling accounts with replacement."""
    base = models[against]
    accounts = np.unique(base.accounts)
    post_rows = {a: np.flatnonzero(base.accounts == a) for a in accounts}
    pair_rows = {a: np.flatnonzero(base.pair_accounts == a)
                 for a in accounts} if base.pair_accounts is not None else None
    rng = np.random.default_rng(seed)
    draws: dict[str, dict[str, list[float]]] = {name: {} for name in models if name != against}
    for _ in range(BOOTSTRAP):
        chosen = rng.choice(accounts, size=len(accounts), replace=True)
        posts = np.concatenate([post_rows[a] for a in chosen])
        pairs = np.concatenate([pair_rows[a] for a in chosen]) if pair_rows is not None else None
        reference = base.metrics(posts, pairs)
        for name, model in models.items():
            if name == against:
                continue
            values = model.metrics(posts, pairs if model.pair_right is not None else None)
            for key, value in values.items():
                if key in reference and key != "draft_pairs_n":
                    draws[name].setdefault(key, []).append(value - reference[key])
    tail = (1 - LEVEL) / 2
    return {name: {key: tuple(float(v) for v in np.nanquantile(values, [tail, 1 - tail])) for key,
                   values in d.items()}
            for name, d in draws.items()}


def run_table(name: str, source: str, path: Path, reference_csv: Path, work: Path, cache_dir: str,
              overrides: list[str],
              ablations: bool) -> dict:
    from engage.config import load_settings
    from engage.data import load_posts
    from engage.features.families import FEATURE_FAMILIES
    from engage.model import evaluation as ev
    from engage.model.targets import TARGETS, count_labels

    settings = load_settings(ROOT / "configs" / "default.yaml", [
        f"data.source={source}", f"data.path={path}", f"features.cache_dir={cache_dir}",
        "train.targets=[likes]", *overrides,
    ])
    posts = load_posts(source, path, progress=False)
    posts.attrs.pop("report", None)
    if source != "table":
        posts[REFERENCE_CSV_COLUMNS].to_csv(reference_csv, index=False)
    y = count_labels(posts, TARGETS["likes"])

    started = time.perf_counter()
    try:
        reference_json, reference_posts = run_reference(reference_csv, work)
        print(f"      reference: {json.dumps(reference_json)} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    # e.g. no account with a test post by its split
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
        reference_json, reference_posts = {"error": str(e)}, None
        print(f"      {e}: engage and the baseline only", flush=True)

    families = [None, *(FEATURE_FAMILIES if ablations else [])]
    (data, pairs), variants = engage_variants(settings, posts, families)
    split = data.split
    test = split.test
    fit_rows = np.concatenate([split.train, split.valid])
    accounts = posts["account"].astype(str).to_numpy()
    baseline = ev.account_training_baseline(posts, y, fit_rows, test)
    known = ~np.isnan(y[test])
    residuals = y[fit_rows] - ev.account_training_baseline(posts, y, fit_rows, fit_rows)
    low_q, high_q = np.nanquantile(residuals,
                                   [(1 - settings.train.interval) / 2, (1 + settings.train.interval) / 2])

    # The reference's predictions on the same posts: its test set must be engage's.
    keys = pd.MultiIndex.from_arrays([accounts[test], posts["post_id"].astype(str).to_numpy()[test]])
    if reference_posts is not None:
        theirs = reference_posts.set_index([reference_posts["account"].astype(str),
                                            reference_posts["post_id"].astype(str)])["pred"]
        matched = theirs.reindex(keys).to_numpy(dtype=float)
        same_split = len(theirs) == len(test) and not np.isnan(matched[known]).any()
    else:
        theirs, matched, same_split = pd.Series(dtype=float), np.full(len(test), np.nan), True
    # Where the splits differ (the reference rounds each account's 20% down: an account of 3 posts has no test
    # post there, one here), every model is compared on the posts both hold out.
    common = known & ~np.isnan(matched) if reference_posts is not None else known
    if not same_split:
        print(f"      the reference held out {len(theirs)} posts, "
              f"engage {int(known.sum())}: posts and pairs compared "
              f"on the {int(common.sum())} both hold out", flush=True)
    known = common
    in_common = set(test[common].tolist())
    pair_common = np.array([e in in_common and lt in in_common for e,
                            lt in zip(pairs.earlier, pairs.later, strict=True)],
                           dtype=bool)

    rows = test[known]
    pair_ok = ~(np.isnan(y[pairs.earlier]) | np.isnan(y[pairs.later])) & pair_common
    sign = np.sign(y[pairs.later] - y[pairs.earlier])
    scored: dict[str, Scored] = {
        "account baseline": Scored(accounts[rows], y[rows], baseline[known], baseline[known],
                                   baseline[known] + low_q,
                                   baseline[known] + high_q),
    }
    if reference_posts is not None:
        scored["reference"] = Scored(accounts[rows], y[rows], baseline[known], matched[known], None, None)
    for variant, result in variants.items():
        p = result["preds"]
        predicted = np.sign(p.get("pair_later", np.zeros(len(pairs.earlier))) - p.get(
            "pair_earlier", np.zeros(len(pairs.earlier))))
        scored[variant] = Scored(accounts[rows], y[rows], baseline[known], p["expected"][known],
                                 p["low"][known],
                                 p["high"][known], accounts[pairs.earlier], predicted == sign,
                                 pair_ok & (sign != 0) & (predicted != 0))
    intervals = bootstrap_differences(scored, "engage") if len(np.unique(accounts[rows])) > 1 else {}
    table = {}
    for model, result in scored.items():
        figures = result.metrics()
        if model == "reference":
            figures["draft_pairs_7d"] = reference_json.get("reference_draft_pairs_7d")
            figures["draft_pairs_n"] = reference_json.get("draft_pairs_7d")
        if model == "account baseline":
            figures["draft_pairs_7d"], figures["draft_pairs_n"] = 0.5, 0
        figures["vs_engage_90"] = intervals.get(model, {})
        table[model] = figures
    return {"rows": table, "same_split": same_split, "reference": reference_json,
            "test_posts": int(known.sum()),
            "reference_test_posts": int(len(theirs)), "engage_test_posts": int(len(test)),
            "accounts_5_posts": int((posts.groupby("account").size() >= 5).sum()),
            "pairs": int(len(pairs.earlier)),
            "seconds": {k: v["seconds"] for k, v in variants.items()}}


def _cell(value: float | None, interval: tuple[float, float] | None, reference: float | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    text = f"{value:.3f}"
    if interval is not None and reference is not None:
        text += f" ({value - reference:+.3f} [{interval[0]:+.3f}, {interval[1]:+.3f}])"
    return text


def markdown(results: dict[str, dict]) -> str:
    lines = ["| data set | model | draft pairs 7d (pairs) | relative Spearman | MAE(log1p) | 80% coverage |",
             "|---|---|---|---|---|---|"]
    for name, result in results.items():
        if "error" in result:
            lines.append(f"| {name} | error: {result['error']} | | | | |")
            continue
        rows = result["rows"]
        engage = rows["engage"]
        for model, r in rows.items():
            ci = r.get("vs_engage_90", {})
            pairs = "" if r.get("draft_pairs_n") in (None, 0) else f" ({r['draft_pairs_n']})"
            lines.append(
                f"| {name} | {model} | "
                f"{_cell(r.get('draft_pairs_7d'), ci.get('draft_pairs_7d'), engage.get('draft_pairs_7d'))}"
                f"{pairs} "
                "| "
                f"{_cell(r['spearman_relative'], ci.get('spearman_relative'), engage['spearman_relative'])}"
                " "
                f"| {_cell(r['mae_log1p'], ci.get('mae_log1p'), engage['mae_log1p'])} "
                f"| {_cell(r.get('interval_coverage'), None, None)} |")
    lines.append(
        "(in brackets: the difference from engage and its 90% paired bootstrap interval over accounts)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=[*TABLES, *DUMPS], action="append",
                        help="this table only (repeatable)")
    parser.add_argument("--real-dir", type=Path, default=REAL,
                        help="where the real tables are (default ../shared/data/real)")
    parser.add_argument("--cache-dir",
                        help="the feature cache (default: features.cache_dir of configs/default.yaml)")
    parser.add_argument("--no-ablations", action="store_true",
                        help="engage, the reference and the baseline only")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("overrides", nargs="*", metavar="section.key=value",
                        help="engage config overrides, e.g. train.lightgbm.num_leaves=31")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not REFERENCE.is_file():
        parser.error(f"the shared reference is not at {REFERENCE}")

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache_dir = args.cache_dir or str(ROOT / "data" / "cache")
        for name in [*TABLES, *DUMPS]:
            if args.only and name not in args.only:
                continue
            if name in DUMPS:
                source, path, reference_csv = "instaloader", args.real_dir / name, work / f"{name}.csv"
                if not path.is_dir():
                    print(f"{path} not found; skipping", file=sys.stderr)
                    continue
            else:
                original = args.real_dir / f"{name}.csv"
                if not original.is_file():
                    print(f"{original} not found; skipping", file=sys.stderr)
                    continue
                source, path = "table", work / f"{name}.csv"
                convert = TABLES[name]
                if convert is None:
                    shutil.copyfile(original, path)
                else:
                    convert(original).to_csv(path, index=False)
                reference_csv = path
            print(f"\n=== {name} ===", flush=True)
            try:
                results[name] = run_table(name, source, path, reference_csv, work, cache_dir, args.overrides,
                                          not args.no_ablations)
            except Exception as e:  # report and go on: one table's failure must not hide the others
                results[name] = {"error": f"{type(e).__name__}: {e}"}
                print(f"      {results[name]['error']}", flush=True)
    print()
    print(markdown(results))
    print(f"(load average at the end: {' / '.join(f'{v:.1f}' for v in os.getloadavg())})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
