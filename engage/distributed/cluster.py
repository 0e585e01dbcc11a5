"""Starting or joining Ray for one run, and shutting it down after it.

`runtime.ray_address` (or the `RAY_ADDRESS` environment variable) joins a running cluster: `auto` finds
the one started on this machine by `ray start --head`, `ray://host:10001` or `host:6379` a remote one.
Without either, a local Ray is started for the run (`runtime.ray_num_cpus` CPUs, no dashboard) and shut
down after it, so nothing keeps running when a run ends or fails.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from engage.config import RuntimeSettings
from engage.errors import ConfigError

log = logging.getLogger(__name__)


@contextmanager
def ray_session(runtime: RuntimeSettings) -> Iterator[None]:
    """Ray initialised for the block; a Ray this call started (or joined) is shut down after it.

    An already initialised Ray (a test, a notebook) is used as it is and left running.
    """
    if ray.is_initialized():
        yield
        return
    address = runtime.ray_address or os.environ.get("RAY_ADDRESS") or None
    options: dict = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
    try:
        if address is None:
            ray.init(num_cpus=runtime.ray_num_cpus, **options)
        else:
            ray.init(address=address, **options)
    except ConnectionError as e:
        raise ConfigError(
            f"cannot join the Ray cluster at {address!r} ({e}); start one with `ray start --head` or unset "
            "runtime.ray_address / RAY_ADDRESS to start a local Ray for the run"
        ) from e
    _quiet_ray_data()
    resources = ray.cluster_resources()
    log.info("Ray: %s CPUs, %s GPUs", resources.get("CPU", 0), resources.get("GPU", 0))
    try:
        yield
    finally:
        ray.shutdown()


def _quiet_ray_data() -> None:
    """engage prints one progress bar per step on the driver; Ray Data's own bars and its status lines
    every few seconds (without a terminal) would bury it."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def cluster_gpus() -> float:
    """GPUs in the cluster (0 on a CPU-only one): embedder
    actors ask for a GPU each only when there are some."""
    return float(ray.cluster_resources().get("GPU", 0.0))


def worker_threads(runtime: RuntimeSettings) -> int:
    """Threads one actor or worker may use: the CPUs it reserves, at least one."""
    return max(1, int(runtime.ray_cpus_per_worker))
