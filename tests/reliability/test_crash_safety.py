"""Crash safety of training: `python train.py` killed with SIGKILL at random moments never leaves a demo
population, feature cache, exported bundle or registered model version that a later run trusts wrongly,
and the run after the kills finishes with the same features as a clean run.

Every run here is a real `train.py` subprocess on a tiny demo (4 accounts, ~45 posts, 96-pixel photos),
started in its own process group (the embedder's decode workers die with it) and with its working
directory in a temporary folder beside its demo, cache, tracking store and exported bundle, so that nothing
it writes lands in the project.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # a dozen real training runs (minutes)

ROOT = Path(__file__).resolve().parents[2]
TINY = {"n_accounts": 4, "posts_per_account": 12, "image_size": 96, "months": 3, "seed": 7}
#: Seed of the kill schedule, so that a failure can be replayed.
KILL_SEED = 20240601
#: The stage each of the ten killed runs is killed in (0: start-up, before stage 1), at a random moment of
#: it: 2 embeds photos and captions (the first run starts with nothing cached, so it is stopped
#: mid-extraction), 3 computes the feature table, 4 trains
#: LightGBM, 7 logs to MLflow, 8 registers and exports.
KILL_STAGES = (2, 2, 3, 4, 7, 0, 4, 8, 2, 8)
#: A stage line of train.py: `[n/total] text`.
STAGE_LINE = re.compile(r"^\[(\d+)/\d+\] ")


def overrides(work: Path) -> list[str]:
    """The tiny training run, with every file it writes inside `work`."""
    return [
        *(f"data.demo.{k}={v}" for k, v in TINY.items() if k != "seed"),
        "train.lightgbm.n_estimators=50",
        # The level's 600 trees cannot split ~30 training posts (50 posts a leaf): 50 stumps predict the same.
        "train.level.n_estimators=50",
        # What is killed is the run's files, not its targets: a count, an insight count and the risk model
        # write every kind of model file the smoke config's six targets do, with half the fits and plots.
        "train.targets=[likes, impressions, authenticity_risk]",
        "image.embedder=efficientnet",
        f"data.demo.out_dir={work / 'demo'}",
        f"features.cache_dir={work / 'cache'}",
        f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
    ]


@dataclass
class Run:
    """What one `train.py` run did: exit code, seconds, the
    stage lines it printed (with times) and its output."""

    returncode: int
    seconds: float
    stages: list[tuple[float, str]] = field(default_factory=list)
    output: str = ""
    killed_at: float | None = None

    @property
    def last_stage(self) -> str:
        return self.stages[-1][1] if self.stages else "(start-up, before stage 1)"

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def run_train(work: Path, *, kill_after: float | None = None, kill_stage: int | None = None,
              kill_when: Callable[[], bool] | None = None, timeout: float = 300) -> Run:
    """`python train.py` on the tiny config in `work`; SIGKILL its process group `kill_after` seconds after
    start (or, with `kill_stage`, after the line announcing that stage), or as soon as `kill_when()` (polled
    every 5 ms) is true."""
    work.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "smoke.yaml"),
               "--no-progress", "--export", str(work / "export"), *overrides(work)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    run = Run(returncode=0, seconds=0.0)
    lines: list[str] = []
    killed = threading.Event()

    def kill() -> None:
        if process.poll() is None and not killed.is_set():
            killed.set()
            run.killed_at = time.monotonic() - started
            try:
                os.killpg(process.pid, signal.SIGKILL)  # our own child's group: train.py and its workers
            except ProcessLookupError:
                pass

    def watch() -> None:
        while process.poll() is None and not killed.is_set():
            if kill_when is not None and kill_when():
                kill()
            time.sleep(0.005)

    timer = threading.Timer(kill_after, kill) if kill_after is not None and not kill_stage else None
    if timer is not None:
        timer.start()
    if kill_when is not None:
        threading.Thread(target=watch, daemon=True).start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            now = time.monotonic() - started
            stage_line = STAGE_LINE.match(line)
            if stage_line and not killed.is_set():
                run.stages.append((now, line.strip()))
                if kill_stage and int(stage_line[1]) == kill_stage and timer is None:
                    timer = threading.Timer(kill_after or 0.0, kill)
                    timer.start()
            if now > timeout:
                kill()
        process.wait(timeout=timeout)
    finally:
        if timer is not None:
            timer.cancel()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    run.returncode = process.returncode
    run.seconds = time.monotonic() - started
    run.output = "".join(lines)
    return run


# --------------------------------------------------------------------------------------------- invariants


def check_demo(work: Path) -> None:
    """The demo directory is either absent or a complete population that `load_demo` would reuse."""
    from engage.data.demo import is_current

    demo = work / "demo"
    assert not demo.exists() or is_current(demo, **TINY), f"{demo} exists but is not a complete population"


def check_cache(work: Path) -> dict[str, int]:
    """Every shard the cache would read is complete; returns rows per namespace directory."""
    from engage.embed.cache import SHARD_GLOB

    rows: dict[str, int] = {}
    for directory in sorted(p for p in (work / "cache").glob("*") if p.is_dir()):
        for shard in sorted(directory.glob(SHARD_GLOB)):
            with np.load(shard, allow_pickle=False) as data:  # raises on a truncated or partial shard
                keys, vectors = data["keys"], data["vectors"]
            assert keys.ndim == 1 and vectors.shape == (len(keys), vectors.shape[1]), shard
            assert np.isfinite(vectors).all(), f"{shard} holds non-finite vectors"
            rows[directory.name] = rows.get(directory.name, 0) + len(keys)
    return rows


def registered_versions(work: Path) -> list[str]:
    """Every version of `engage` in the run's MLflow store, each loaded completely (manifest checked)."""
    from mlflow.tracking import MlflowClient

    from engage.model.bundle import EngageModel

    store = work / "mlflow.db"
    if not store.exists():
        return []
    uri = f"sqlite:///{store}"  # its artifact locations are absolute paths under work/mlruns
    versions = sorted((v.version for v in MlflowClient(uri).search_model_versions("name='engage'")), key=int)
    for version in versions:
        model = EngageModel.from_uri(f"models:/engage/{version}", uri)
        assert model.models and len(model.context_posts) > 0, f"version {version} loaded without its models"
    return [str(v) for v in versions]


def check_export(work: Path) -> None:
    """The exported bundle is either absent or complete (its manifest matches every file)."""
    from engage.model.bundle import EngageModel

    if (work / "export").exists():
        EngageModel.load(work / "export")


def check_nothing_trusted_wrongly(work: Path, why: str) -> tuple[dict[str, int], list[str]]:
    try:
        check_demo(work)
        rows = check_cache(work)
        versions = registered_versions(work)
        check_export(work)
    except Exception as e:
        raise AssertionError(f"{why}: {type(e).__name__}: {e}") from e
    return rows, versions


# --------------------------------------------------------------------------------------------- features


def settings_for(work: Path):
    from engage.config import load_settings

    return load_settings(ROOT / "configs" / "smoke.yaml", overrides(work))


def shard_vectors(work: Path) -> dict[str, dict[str, np.ndarray]]:
    """namespace directory -> key -> vector, from every shard of the cache."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for shard in sorted((work / "cache").glob("*/shard-*.npz")):
        with np.load(shard, allow_pickle=False) as data:
            out.setdefault(shard.parent.name,
                           {}).update(zip(data["keys"].tolist(), data["vectors"], strict=True))
    return out


def features_through_cache(work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame, int]:
    """The pipeline's vectors and feature table from `work`'s demo and cache, and the shards it had to add."""
    from engage.data import load_posts
    from engage.features.pipeline import FeaturePipeline
    from engage.model.evaluation import time_split

    settings = settings_for(work)
    options = settings.data.demo.model_dump()
    posts = load_posts("demo", options.pop("out_dir"), **options)
    shards_before = len(list((work / "cache").glob("*/shard-*.npz")))
    pipeline = FeaturePipeline.from_settings(settings)
    vectors = pipeline.embed(posts, progress=False)
    added = len(list((work / "cache").glob("*/shard-*.npz"))) - shards_before
    split = time_split(posts, settings.train.test_fraction, settings.train.valid_fraction)
    pipeline.fit(vectors, rows=split.train)
    return vectors.image, vectors.caption, vectors.quality, pipeline.transform(posts, vectors), added


def stage_spans(run: Run) -> dict[int, tuple[float, float]]:
    """stage -> (start, seconds) in a finished run; stage 0 is the start-up before stage 1."""
    starts = [(0, 0.0)] + [(int(STAGE_LINE.match(text)[1]), at) for at, text in run.stages]
    ends = [at for _, at in starts[1:]] + [run.seconds]
    return {stage: (at, end - at) for (stage, at), end in zip(starts, ends, strict=True)}


def kill_plan(clean: Run) -> list[tuple[int, float]]:
    """(stage, seconds into it) for each entry of KILL_STAGES, uniform over that stage's length in the clean
    run. Runs that find the demo and vectors ready pass stages 1-2 faster, so those kills may land later."""
    rng = np.random.default_rng(KILL_SEED)
    spans = stage_spans(clean)
    return [(stage, float(rng.uniform(0.05, 0.95)) * spans[stage][1]) for stage in KILL_STAGES]


# --------------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    """One uninterrupted run in a fresh directory: the
    reference, and how long each of its stages takes here."""
    work = tmp_path_factory.mktemp("clean")
    run = run_train(work)
    assert run.returncode == 0, f"the clean run failed:\n{run.tail()}"
    check_nothing_trusted_wrongly(work, "after the clean run")
    return work, run


def test_train_killed_ten_times_at_random_leaves_nothing_trusted_wrongly_and_then_matches_a_clean_run(
    clean: tuple[Path, Run], tmp_path: Path
) -> None:
    clean_dir, clean_run = clean

    killed_dir = tmp_path / "killed"
    log: list[str] = []
    for i, (stage, moment) in enumerate(kill_plan(clean_run)):
        run = run_train(killed_dir, kill_stage=stage, kill_after=moment)
        outcome = f"killed at {run.killed_at:.1f} s in {run.last_stage[:40]!r}" if run.killed_at else (
            f"finished (rc {run.returncode}) in {run.seconds:.1f} "
            f"s before the kill {moment:.1f} s into stage {stage}")
        log.append(f"run {i + 1}: {outcome}")
        if run.killed_at is None:
            assert run.returncode == 0, (f"run {i + 1} failed on its own after earlier "
                                         f"kills:\n{run.tail()}\n") + "\n".join(log)
        rows, versions = check_nothing_trusted_wrongly(killed_dir, f"after run {i + 1} ({outcome})")
        log[-1] += f"; cache rows {sum(rows.values())}, registered versions {versions}"
    print("\n".join(log))  # shown with pytest -s: where each kill landed

    final = run_train(killed_dir)
    assert final.returncode == 0, (
        "the run after the kills did not finish:\n" + final.tail() + "\n" + "\n".join(log))
    _, versions = check_nothing_trusted_wrongly(killed_dir, "after the final run")
    assert versions, "the final run registered no model version"

    # Same cache content, key by key.
    clean_vectors, killed_vectors = shard_vectors(clean_dir), shard_vectors(killed_dir)
    assert sorted(clean_vectors) == sorted(killed_vectors)
    for namespace, by_key in clean_vectors.items():
        assert sorted(by_key) == sorted(killed_vectors[namespace]), f"{namespace}: different keys"
        for key, vector in by_key.items():
            np.testing.assert_allclose(killed_vectors[namespace][key], vector, atol=1e-6,
                                       err_msg=f"{namespace}/{key}")

    # Same vectors and feature table through the pipeline, served entirely from the (complete) caches.
    *clean_arrays, clean_table, clean_added = features_through_cache(clean_dir)
    *killed_arrays, killed_table, killed_added = features_through_cache(killed_dir)
    assert (clean_added, killed_added) == (0, 0), "a finished run's cache lacked vectors the pipeline needed"
    for name, a, b in zip(("image", "caption", "quality"), clean_arrays, killed_arrays, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6, equal_nan=True, err_msg=f"{name} vectors differ")
    assert list(killed_table.columns) == list(clean_table.columns)
    np.testing.assert_allclose(killed_table.to_numpy(), clean_table.to_numpy(), atol=1e-6, equal_nan=True)


def store_error(work: Path) -> str | None:
    """Why a later run could not open work/mlflow.db (None: it can, or there is none). Tried on a copy,
    because opening a store may finish creating it."""
    from mlflow.tracking import MlflowClient

    store = work / "mlflow.db"
    if not store.exists():
        return None
    trial = work.parent / f"{work.name}-store-trial"
    trial.mkdir()
    for name in ("mlflow.db", "mlflow.db-journal"):  # a hot journal is rolled back by the next open
        if (work / name).exists():
            shutil.copy2(work / name, trial / name)
    try:
        MlflowClient(f"sqlite:///{trial / 'mlflow.db'}").search_experiments()
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    finally:
        shutil.rmtree(trial)
    return None


def half_migrated(work: Path) -> bool:
    """Whether MLflow is midway through one of the schema migrations it runs when it creates a new store, in
    any SQLite file of `work` (the store, or a temporary file it is being built in): its batch migrations copy
    a table into `_alembic_tmp_<table>` (committed at once: SQLite runs DDL outside transactions) and drop
    that copy before the migration is recorded as done."""
    for store in work.glob("*mlflow.db*"):
        try:
            with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=0.02) as connection:
                found = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' "
                    "AND name LIKE '\\_alembic\\_tmp\\_%' ESCAPE '\\'"
                ).fetchone()
        except sqlite3.Error:  # not a database (a journal), or locked by the writer this instant
            continue
        if found is not None:
            return True
    return False


def test_train_killed_while_mlflow_creates_its_store_does_not_break_the_next_run(
    clean: tuple[Path, Run], tmp_path: Path
) -> None:
    """The first run against a new tracking store creates MLflow's tables, applying some 50 schema migrations
    one by one (seconds). A kill in the middle of one (an early version of the random test above hit it by
    chance) must not leave a store on which every later run fails after all its training work: MLflow cannot
    repair a half-migrated store, not even with `mlflow db upgrade`. The run is killed the moment any SQLite
    file in its directory is seen half-migrated."""
    clean_dir = clean[0]
    for reused in ("demo", "cache"):  # only the end of the run matters here
        shutil.copytree(clean_dir / reused, tmp_path / reused)
    run = run_train(tmp_path, kill_when=lambda: half_migrated(tmp_path))
    if run.killed_at is None:  # MLflow created the store too fast to be caught half-way
        assert run.returncode == 0, run.tail()
    else:
        broken = store_error(tmp_path)
        state = "absent" if not (tmp_path / "mlflow.db").exists() else broken or "opens"
        print(
            f"killed {run.killed_at:.1f} s into the run with a store half-migrated; mlflow.db then: {state}")
        following = run_train(tmp_path)
        assert following.returncode == 0, (
            f"killed {run.killed_at:.1f} s into the run while MLflow was migrating the new store "
            f"{tmp_path / 'mlflow.db'} ({broken or 'it still opened'}), and the next run failed in "
            f"{following.last_stage!r}:\n{following.tail(4)}")
    assert registered_versions(tmp_path) == ["1"]
