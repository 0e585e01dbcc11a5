"""The models' LightGBM estimators fitted by Ray Train's LightGBMTrainer, data parallel, in one run.

The models (`engage.model.targets`) fit their priors, residuals and calibration on the driver as always
and hand their LightGBM estimators, as `LightGBMJob`s, to `fit_on_ray`: all seven in one Ray Train run,
since starting a worker group costs tens of seconds. Each job's training rows are dealt round-robin into
one shard per worker; every worker gets the whole validation slice, so all workers compute the same
early-stopping metric from the same trees and stop at the same round (a worker stopping alone would hang
the others). Each worker runs `engage.engine.fit_estimator`, the local path's own call, with
LightGBM's network parameters and `tree_learner=data_parallel`: without it every worker would silently
train its own model on its shard (and, with several workers, `feature_pre_filter=False`: `_worker_params`).
Histograms are summed over the workers, so the trees see all rows; each feature's bin boundaries are found
by one worker on its shard, each worker bags its own shard (`subsample`: the same seed, other rows than
the local fit's bag) and quantile leaf values are averaged over workers, so the boosters come out close to,
not equal with, a local fit: as far from it as a local fit with another seed (docs/scale.md gives the
measured differences). One worker gives the local fit's boosters.

Worker 0 returns the fitted estimators through a Ray Train checkpoint; the workers' parameters are removed
from them (as lightgbm.dask does), so the bundle holds ordinary estimators that score anywhere. The checkpoint
lies in storage others may write (a shared folder, a bucket), so it is a signed folder (engage/signing.py:
boosters as text model strings, arrays as npz, the rest signed) under a key made for this run and handed to
the workers through Ray's object store, never written to storage: a checkpoint planted or edited there is
refused, not unpickled.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import ray
import ray.train
from ray._common.network_utils import build_address
from ray.train._internal.utils import get_address_and_port
from ray.train.lightgbm import LightGBMTrainer

from engage.config import RuntimeSettings
from engage.engine import LightGBMJob, fit_estimator
from engage.errors import ModelError
from engage.signing import load_signed, save_signed


@ray.remote(num_cpus=0)
class _Addresses:
    """Where each worker listens for each job: a port is free once; LightGBM cannot rebind a port it just
    closed (TIME_WAIT), so every job gets fresh ports, exchanged here."""

    def __init__(self, n_workers: int):
        self.n_workers = n_workers
        self.addresses: dict[int, dict[int, str]] = {}

    def put(self, job: int, rank: int, address: str) -> None:
        self.addresses.setdefault(job, {})[rank] = address

    def machines(self, job: int) -> str | None:
        found = self.addresses.get(job, {})
        return ",".join(found[r] for r in range(self.n_workers)) if len(found) == self.n_workers else None


def _network_params(board: Any, job: int, rank: int, n_workers: int) -> dict[str, Any]:
    """LightGBM's network parameters for `job`: a fresh port on this worker, and every worker's address."""
    host, port = get_address_and_port()
    ray.get(board.put.remote(job, rank, build_address(host, port)))
    deadline = time.monotonic() + 120
    while (machines := ray.get(board.machines.remote(job))) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"LightGBM job {job}: not every Ray Train worker reported its address within 120 s")
        time.sleep(0.05)
    return {"machines": machines, "local_listen_port": port, "num_machines": n_workers}


def _worker_params(n_workers: int) -> dict[str, Any]:
    """LightGBM's parameters of a data parallel worker, besides the network's.

    `feature_pre_filter=False` with several workers: LightGBM drops ("pre-filters") a feature when no split
    of its bins can leave `min_child_samples` rows on both sides, and a worker counts those rows in its own
    shard only, so with n workers a feature was dropped unless n times `min_child_samples` rows allowed a
    split (a flag on 30 of 200 posts, min_child_samples=20: used by the local fit, never split by 2 workers).
    Unfiltered, the workers split on the histograms summed over every shard, where `min_child_samples`
    counts all rows, as in the local fit. One worker is the local fit: nothing changes (its models equal the
    local ones)."""
    params: dict[str, Any] = {"tree_learner": "data_parallel", "time_out": 10}
    if n_workers > 1:
        params["feature_pre_filter"] = False
    return params


def _fit_on_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: fit every job on this worker's
    shard, one after the other, in step with the others."""
    context = ray.train.get_context()
    rank, n_workers = context.get_world_rank(), context.get_world_size()
    fitted = []
    for index, (job_ref, shard_refs) in enumerate(zip(config["jobs"], config["shards"], strict=True)):
        job: LightGBMJob = ray.get(job_ref)
        train, y_train, start = ray.get(shard_refs[rank])
        if start is not None:
            job = replace(job, fit_params={**job.fit_params, "init_score": start})
        before = job.estimator.get_params()
        worker = {**_network_params(config["board"], index, rank, n_workers), **_worker_params(n_workers),
                  "n_jobs": config["threads"]}
        job.estimator.set_params(**worker)
        estimator = fit_estimator(replace(job, train=train, y_train=y_train))
        estimator.booster_.free_network()
        for name in worker:  # an ordinary estimator again: its own value back, or none
            if name in before:
                estimator.set_params(**{name: before[name]})
            else:
                estimator._other_params.pop(name, None)
                estimator.__dict__.pop(name, None)
        fitted.append(estimator)
    metrics = {"best_iterations": [int(e.best_iteration_ or e.n_estimators) for e in fitted]}
    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as tmp:
        save_estimators(Path(tmp), fitted, ray.get(config["key"]))
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def save_estimators(directory: Path, estimators: list[lgb.LGBMModel], key: bytes) -> None:
    """The fitted estimators as a signed folder (boosters as text; nothing is unpickled without the key)."""
    save_signed(directory, list(estimators), key, meta={"what": "engage Ray Train checkpoint"})


def load_estimators(directory: Path, key: bytes) -> list[lgb.LGBMModel]:
    """The estimators of a checkpoint written by `save_estimators`
    with `key`; a planted or edited one is refused."""
    estimators, _, _ = load_signed(
        directory, key, what=f"Ray Train checkpoint {directory}",
        fix="it was not written by this run's workers (is the "
        "checkpoint storage shared with someone?); train again")
    if not isinstance(estimators, list):
        raise ModelError(f"Ray Train checkpoint {directory} holds no list of estimators; train again")
    return estimators


def shards(n_rows: int, n_workers: int) -> list[np.ndarray]:
    """Row positions per worker, dealt round-robin: each shard spans the whole time range."""
    return [np.arange(k, n_rows, n_workers) for k in range(n_workers)]


def fit_on_ray(jobs: list[LightGBMJob], *, runtime: RuntimeSettings, storage: str) -> list[lgb.LGBMModel]:
    """The jobs' estimators fitted by `runtime.ray_workers` Ray Train workers in one run, in order."""
    if not jobs:
        return []
    jobs = [job.materialized() for job in jobs]  # each job's own rows, sharded below
    workers = max(1, min(runtime.ray_workers, min(len(job.train) for job in jobs)))
    key = secrets.token_bytes(32)  # signs this run's checkpoint (see the module docstring)
    job_refs, shard_refs = [], []
    for job in jobs:
        parts = shards(len(job.train), workers)
        # A per-row start (a count model's level starting from the trailing mean) is sharded with its rows.
        start = job.fit_params.get("init_score")
        shard_refs.append([ray.put((job.train.iloc[rows], np.asarray(job.y_train)[rows],
                                    None if start is None else np.asarray(start)[rows])) for rows in parts])
        # The whole validation slice goes to every worker (see the module docstring).
        job_refs.append(ray.put(replace(job, train=job.train.iloc[:0], y_train=np.asarray(job.y_train)[:0])))
    trainer = LightGBMTrainer(
        _fit_on_worker,
        train_loop_config={"jobs": job_refs, "shards": shard_refs, "board": _Addresses.remote(workers),  # type: ignore[attr-defined]
                           "threads": max(1, int(runtime.ray_cpus_per_worker)),
                           # a reference, so the key stays in the object
                           # store (Ray Train saves its config to storage)
                           "key": ray.put(key)},
        scaling_config=ray.train.ScalingConfig(num_workers=workers,
                                               resources_per_worker={"CPU": runtime.ray_cpus_per_worker}),
        run_config=ray.train.RunConfig(storage_path=storage,
                                       failure_config=ray.train.FailureConfig(max_failures=0)),
    )
    result = trainer.fit()
    assert result.checkpoint is not None  # the workers report one (a failed run raises above)
    with result.checkpoint.as_directory() as directory:
        return load_estimators(Path(directory), key)
