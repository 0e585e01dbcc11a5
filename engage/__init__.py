"""engage: how will a micro-influencer's draft post do, before it is posted?

The few names a user imports live here; everything else is internal:

    settings = engage.load_settings("configs/smoke.yaml")     # or engage.Settings() for the defaults
    posts = engage.load_posts("demo")                          # or "table" / "instaloader" with a path
    result = engage.train(settings)                            # logs to MLflow, registers, returns the run
    model = engage.EngageModel.from_uri("models:/engage@champion")   # or a bundle directory
    scorer = engage.Scorer(model)                              # what serves it (cache, batcher: for_serving)
    answer = scorer.score(engage.Draft(account="anna.bakes", caption="Sourdough day #bread"))
    answer.likes.expected, answer.likes.usual, answer.likes.uplift_percent   # typed
    (engage/scoring/answers.py) scorer.compare([draft_a, draft_b], goal="saves").drafts[0].index         #
    which draft does better

`EngageModel`, `Scorer`, `Draft` and `train` are imported
on first use, so `import engage` stays light (no torch).
"""

import os

# OpenMP threads (LightGBM, torch) spin briefly (300,000 spins, well under a millisecond) after a parallel
# region before they sleep. LightGBM runs thousands of short regions per fit: with threads that sleep at once
# (OMP_WAIT_POLICY=PASSIVE, engage's setting before) every region waits for them to wake, and the demo's fit
# took 93.7 s instead of 12.9 s on two idle cores (docs/performance.md, "OpenMP threads"); libgomp's own
# default spin count is cut to 100 spins on this kind of machine, which is as slow. Next to a busy process
# passive threads are faster (2.9 s against 8.1 s for the smoke fit; the 100k-post fit of benchmarks/scale.py
# 33.5 s passive against 587.6 s spinning at load 5-12 on two cores), so where the machine is already busy
# when engage is imported (the 1-minute load average at least the number of CPUs) the threads sleep at once.
# serve.py sets PASSIVE for serving. Read by the OpenMP runtime when LightGBM or torch is first imported, so
# it is set here, before either; an explicit OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.


def openmp_waiting(load_average: float, cpus: int) -> tuple[str, str]:
    """(variable, value) for OpenMP's idle threads: spin briefly on a free machine, sleep on a crowded one."""
    if load_average >= max(cpus, 1):
        return "OMP_WAIT_POLICY", "PASSIVE"
    return "GOMP_SPINCOUNT", "300000"


if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    try:
        _load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        _load = 0.0
    _variable, _value = openmp_waiting(_load, os.cpu_count() or 1)
    os.environ[_variable] = _value

from engage.config import Settings, load_settings  # noqa: E402
from engage.data import load_posts  # noqa: E402

__all__ = ["Draft", "EngageModel", "Scorer", "Settings", "load_posts", "load_settings", "train"]

_LAZY = {
    "Draft": ("engage.model.draft", "Draft"),
    "EngageModel": ("engage.model.bundle", "EngageModel"),
    "Scorer": ("engage.scoring.scorer", "Scorer"),
    "train": ("engage.training", "train"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'engage' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
__version__ = "0.1.0"
