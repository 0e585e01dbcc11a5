"""The cost curve: seconds and peak memory of each training stage, and of batch scoring, from 10k to 1M posts.

The posts tables are a real table's accounts replicated: large_accounts_16536 (../shared/data/real/, read
from there, never copied into the project), copy k with new ids (`<account>~k`, `<post_id>~k`), its dates
moved k * 3 days later (so no replica posts within the duplicate window of its original), likes and
followers multiplied by lognormal noise (sigma 0.2 and 0.05) and ` r<k>` appended to every caption (so that
every replica's caption is new to the embedder and the cache, as a real roster's would be). The first n
rows of the replicated table (whole replicas, the last one cut) make the table of size n. No photos: the
tables have none (their URLs expired), as for most real exports.

Each size runs in its own process (so its peak memory is its own) from an empty feature cache, with
`text.embedder=static` (MiniLM would need ~5.5 hours for a million captions; see docs/performance.md):
`engage.training.train`, the code of `python train.py`, timed and measured by its own stages (peak
RSS per stage read from /proc, reset at each stage's start). Then batch scoring: `python -m engage.batch`
on `--drafts` new drafts (the latest posts of the table's accounts, one hour later, new captions) with the
bundle that run exported, in another process.

    python benchmarks/scale.py                          # 10k, 100k and 1M posts, 100k drafts each
    python benchmarks/scale.py --sizes 10000 100000 --drafts 20000
    nice -n 10 python benchmarks/scale.py --sizes 1000000 > scale-1m.log 2>&1 &

The static embedder's table is distilled once (about a minute) into --static-cache before the runs and
copied into each run's empty cache, with the ONNX exports found there: one-offs per machine, not part of
a run's cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "real" / "large_accounts_16536.csv"
DAYS_BETWEEN_REPLICAS = 3


def replicated_table(n: int, source: Path = SOURCE, seed: int = 7) -> pd.DataFrame:
    """The first `n` rows of `source` replicated with new ids, later dates, noisy counts and new captions."""
    raw = pd.read_csv(source, dtype={"account": str, "post_id": str, "caption": str}, keep_default_na=False,
                      na_values=[""])
    raw["posted_at"] = pd.to_datetime(raw["posted_at"], utc=True)
    rng = np.random.default_rng(seed)
    parts, total, k = [], 0, 0
    while total < n:
        part = raw.copy()
        if k:
            part["account"] = part["account"] + f"~{k}"
            part["post_id"] = part["post_id"] + f"~{k}"
            part["posted_at"] = part["posted_at"] + pd.Timedelta(days=DAYS_BETWEEN_REPLICAS * k)
            part["caption"] = part["caption"].fillna("") + f" r{k}"
            likes = pd.to_numeric(part["likes"], errors="coerce")
            part["likes"] = np.round(likes * np.exp(rng.normal(0, 0.2, len(part)))).astype("Int64")
            followers = pd.to_numeric(part["followers"], errors="coerce")
            part["followers"] = np.round(followers * np.exp(rng.normal(0, 0.05, len(part)))).astype("Int64")
        parts.append(part)
        total += len(part)
        k += 1
    table = pd.concat(parts, ignore_index=True).iloc[:n]
    table["posted_at"] = table["posted_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return table


def drafts_table(posts: pd.DataFrame, n: int, seed: int = 11) -> pd.DataFrame:
    """`n` drafts of the table's accounts, each an hour
    after the account's latest post, with a new caption."""
    rng = np.random.default_rng(seed)
    latest = posts.assign(t=pd.to_datetime(posts["posted_at"],
                                           utc=True)).sort_values("t").groupby("account").tail(1)
    pick = latest.iloc[rng.integers(0, len(latest), n)]
    return pd.DataFrame({
        "account": pick["account"].to_numpy(),
        # Instagram's 2,200-character limit holds for drafts
        # too: the longest captions are cut to fit the suffix.
        "caption": [f"{c[:2200 - len(f' draft{i}')]} draft{i}" for i,
                    c in enumerate(pick["caption"].fillna("").tolist())],
        "posted_at": (pick["t"] + pd.Timedelta(hours=1)).dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(),
        "followers": pd.to_numeric(pick["followers"], errors="coerce").to_numpy(),
    })


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def child_train(n: int, work: Path, static_cache: Path) -> dict:
    from engage.config import load_settings
    from engage.embed.static import StaticEmbedder
    from engage.training import train

    started = time.perf_counter()
    table = work / "posts.parquet"
    replicated_table(n).to_parquet(table, index=False)
    made = time.perf_counter() - started
    cache = work / "cache"
    folder = StaticEmbedder(static_cache).folder
    shutil.copytree(folder, StaticEmbedder(cache).folder)  # the one-off distillation is not a run's cost
    if (static_cache / "onnx").is_dir():  # nor the one-off ONNX exports (the signature example loads them)
        shutil.copytree(static_cache / "onnx", cache / "onnx")
    settings = load_settings(ROOT / "configs" / "default.yaml", [
        "data.source=table", f"data.path={table}", f"features.cache_dir={cache}", "text.embedder=static",
        f"tracking.uri=sqlite:///{work / 'mlflow.db'}", "image.embedder=efficientnet",
    ])
    result = train(settings, export_dir=str(work / "bundle"), progress=False)
    # joblib's worker processes (the caption hand features) are reaped now, so that their CPU seconds are in
    # this process's children's and so in the parent's figure for this child
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    return {"posts": n, "table_seconds": made, "seconds": result.seconds, "peak_rss_mb": result.peak_rss_mb,
            "cpu_seconds": result.cpu_seconds,
            "process_peak_rss_mb": _peak_mb(),
            "spearman_relative": result.metrics.get("test_likes_spearman_relative")}


def child_score(work: Path, drafts: int) -> dict:
    from engage.batch import main as batch_main

    posts = pd.read_parquet(work / "posts.parquet")
    table = work / "drafts.parquet"
    drafts_table(posts, drafts).to_parquet(table, index=False)
    del posts
    started = time.perf_counter()
    code = batch_main([str(table), str(work / "scores.parquet"), "--model", str(work / "bundle")])
    seconds = time.perf_counter() - started
    scored = pd.read_parquet(work / "scores.parquet")
    return {"drafts": drafts, "exit": code, "seconds": seconds, "drafts_per_second": drafts / seconds,
            # an empty error marks a scored draft
            "errors": int((scored["error"].fillna("") != "").sum()), "peak_rss_mb": _peak_mb()}


def _run_child(args: list[str]) -> dict:
    """Run one measurement in a fresh process, echoing its stage lines; its last JSON line is the result, with
    the process's CPU seconds (user + system, its own children's included) and wall seconds added."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = used.ru_utime + used.ru_stime
    child = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    tail: list[str] = []
    started = time.perf_counter()
    assert child.stdout is not None
    for line in child.stdout:
        tail = (tail + [line])[-40:]
        if line.startswith(("[", "      ", "{")):  # each stage line with the seconds since the child started
            print(f"  +{time.perf_counter() - started:7.1f} s  " + line.rstrip()[:300], flush=True)
    child.wait()
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # this child and every process it waited for
    cpu = used.ru_utime + used.ru_stime - cpu_before
    results = [line for line in tail if line.startswith("{")]
    if child.returncode != 0 or not results:
        print("".join(tail), file=sys.stderr)
        return {"error": f"exit {child.returncode}", "process_cpu_seconds": cpu}
    return {**json.loads(results[-1]), "process_cpu_seconds": cpu,
            "process_wall_seconds": time.perf_counter() - started}


STAGES = ("load", "embed", "features", "fit", "evaluate", "bundle", "mlflow", "plots", "log_model")


def report(results: list[dict]) -> str:
    lines = [
        "| posts | " + " | ".join(STAGES)
        + " | total s (CPU s) | peak RSS MB | drafts/s (batch) | batch peak MB |",
             "|---" * (len(STAGES) + 5) + "|"]
    for r in results:
        train, score = r.get("train", {}), r.get("score", {})
        if "seconds" not in train:
            lines.append(f"| {r['posts']} | {train.get('error', 'failed')} |")
            continue
        cells = []
        for stage in STAGES:
            s = train["seconds"].get(f"seconds_{stage}")
            c = train.get("cpu_seconds", {}).get(stage)
            m = train["peak_rss_mb"].get(stage)
            cells.append("" if s is None else f"{s:.1f} s" + (f" ({c:.1f})" if c is not None else "")
                         + (f" / {m:.0f} MB" if m else ""))
        lines.append(f"| {train['posts']} | " + " | ".join(cells)
                     + f" | {train['seconds']['seconds_total']:.0f}"
                     + f" ({train.get('process_cpu_seconds', 0):.0f})"
                     + f" | {max([train['process_peak_rss_mb'], *train['peak_rss_mb'].values()]):.0f} "
                     + f"| {score.get('drafts_per_second', float('nan')):.1f} "
                     f"| {score.get('peak_rss_mb', float('nan')):.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="posts per table")
    parser.add_argument("--drafts", type=int, default=100_000, help="drafts batch-scored per size (0: skip)")
    parser.add_argument("--static-cache", type=Path, default=ROOT / "data" / "cache",
                        help="feature cache holding (or to hold) the distilled static embedder")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--child-train", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-score", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child_train:
        print(json.dumps(child_train(args.child_train, args.work, args.static_cache)))
        return 0
    if args.child_score:
        print(json.dumps(child_score(args.work, args.child_score)))
        return 0

    from engage.embed.static import StaticEmbedder

    StaticEmbedder(args.static_cache).embed(["distil the table once, before any timing"])
    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory(prefix=f"engage-scale-{n}-") as tmp:
            print(f"=== {n} posts ===", flush=True)
            row: dict = {"posts": n, "train": _run_child(["--child-train", str(n), "--work", tmp,
                                                           "--static-cache", str(args.static_cache)])}
            print(json.dumps(row["train"]), flush=True)
            if args.drafts and "seconds" in row["train"]:
                row["score"] = _run_child(["--child-score", str(args.drafts), "--work", tmp])
                print(json.dumps(row["score"]), flush=True)
            results.append(row)
    print()
    print(report(results))
    print(f"(each cell: wall seconds (CPU seconds of the process) / peak RSS of the stage; total: wall "
          f"seconds in train (CPU seconds of the whole child process, its joblib workers' included); "
          f"load average at the end: "
          f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())}; {os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
