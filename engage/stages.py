"""A run's stages as the terminal shows them (`[n/total] text`), with each stage's seconds and peak memory.

Used by `engage.training` (and so by `python train.py`) and by the benchmarks that read a run's seconds.
"""

from __future__ import annotations

import math
import os
import time


class Stages:
    """Prints each stage of a run as `[n/total] text` and measures its seconds (`seconds[name]`).

    A stage lasts until the next one starts or `done()` is called; the seconds are printed and logged
    as MLflow metrics `seconds_<name>`, so that a slow run says where its time went.
    """

    def __init__(self, total: int):
        self.total = total
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}  # per stage, where the platform tells (benchmarks/scale.py)
        # per stage: CPU seconds (user + system) of this process and of the children it waited for; on a
        # shared machine the honest cost next to wall seconds (helpers still running, e.g. joblib's, not yet)
        self.cpu_seconds: dict[str, float] = {}
        self._number = 0
        self._current: tuple[str, float] | None = None
        self._cpu_began = 0.0
        self._started = time.perf_counter()

    def start(self, name: str, text: str) -> None:
        self.done()
        self._number += 1
        print(f"[{self._number}/{self.total}] {text}", flush=True)
        _reset_peak_rss()
        self._current = (name, time.perf_counter())
        self._cpu_began = _cpu_seconds()

    def done(self) -> None:
        if self._current is not None:
            name, began = self._current
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + _cpu_seconds() - self._cpu_began
            peak = _peak_rss_mb()
            if peak is not None:
                self.peak_rss_mb[name] = max(self.peak_rss_mb.get(name, 0.0), peak)
            self._current = None

    def metrics(self) -> dict[str, float]:
        # To the millisecond, stages down and the total up, so the stages never add up to more than the total
        # (rounding each to the nearest could: 19.799 against 19.798).
        total = time.perf_counter() - self._started
        return {f"seconds_{name}": math.floor(value * 1000) / 1000 for name,
                value in self.seconds.items()} | {
            "seconds_total": math.ceil(total * 1000) / 1000}

    def summary(self) -> str:
        return ", ".join(f"{name} {value:.1f}" for name, value in self.seconds.items())


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and of its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM); elsewhere nothing."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float | None:
    """The process's peak resident memory since the last reset, in MB (None where /proc is not there)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
