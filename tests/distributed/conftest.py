"""A local Ray for the Ray tests: 2 CPUs, no dashboard, shut down after the module."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray engine tests need the extra: pip install -e \".[ray]\"")
    # engage's ray_session leaves an already initialised Ray alone, so one Ray serves the whole module.
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    from engage.distributed.cluster import _quiet_ray_data

    _quiet_ray_data()
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_settings(smoke_settings, tmp_path_factory):
    """The smoke settings on the Ray engine: 2 workers of half a CPU, and a cache of its own, so the Ray path
    computes every vector itself instead of reading the local run's."""
    work = tmp_path_factory.mktemp("ray")
    settings = smoke_settings.model_copy(deep=True)
    settings.features.cache_dir = str(work / "cache")
    settings.tracking.uri = f"sqlite:///{work / 'mlflow.db'}"
    settings.runtime.engine = "ray"
    settings.runtime.ray_workers = 2
    settings.runtime.ray_cpus_per_worker = 0.5
    return settings
