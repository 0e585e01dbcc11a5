"""Which engine runs a run's heavy steps: a registry of engines by name, and `open_engine`, the one switch.

    ENGINES = {"local": ..., "ray": ...}      # name -> a context manager factory taking the Settings
    with open_engine(settings) as engine:     # settings.runtime.engine names it
        ...

The contract every engine satisfies is `engage.engine.Engine` (at the bottom of the house); the local engine
lives with the feature functions it calls (`engage.features.local_engine`), the Ray engine above everything
it spreads over a cluster (`engage.distributed.engine`). This module sits above both, so it imports each
one downwards; Ray is imported only when the Ray engine is asked for, so the local engine needs no Ray
installed. A new engine is one module with a `(settings) -> context manager yielding an Engine` function
and one line in `ENGINES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from engage.config import Settings
from engage.engine import Engine
from engage.errors import ConfigError
from engage.features.local_engine import LOCAL


@contextmanager
def local_engine(settings: Settings) -> Iterator[Engine]:
    """The local engine: nothing to start or stop."""
    yield LOCAL


@contextmanager
def ray_engine(settings: Settings) -> Iterator[Engine]:
    """The Ray engine (the `ray` extra): Ray started or joined for the run, shut down after it."""
    try:
        from engage.distributed.engine import ray_engine as open_ray
    except ImportError as e:
        raise ConfigError(
            f"runtime.engine=ray needs Ray, which is not installed ({e}); install the extra with "
            "pip install -e \".[ray]\" or run with runtime.engine=local"
        ) from e
    with open_ray(settings) as engine:
        yield engine


#: Engine name -> how to open it for a run (`runtime.engine`).
ENGINES: dict[str, Callable[[Settings], AbstractContextManager[Engine]]] = {
    "local": local_engine,
    "ray": ray_engine,
}


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The engine `settings.runtime.engine` names, ready for the run; Ray is shut down after it."""
    name = settings.runtime.engine
    if name not in ENGINES:
        raise ConfigError(f"runtime.engine={name!r} is not an engine; choose one of {', '.join(ENGINES)}")
    with ENGINES[name](settings) as engine:
        yield engine
