"""The dynamic batcher: concurrent submissions share batches, each caller gets its own results in order."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from engage.scoring.batching import DynamicBatcher


class Recorder:
    def __init__(self, delay: float = 0.0):
        self.batches: list[list[int]] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.batches.append(list(items))
        time.sleep(self.delay)
        return [10 * x for x in items]


def test_concurrent_callers_share_batches_and_get_their_own_results():
    recorder = Recorder(delay=0.02)
    batcher = DynamicBatcher(recorder, max_batch_size=8, max_wait_ms=200)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: batcher.submit([i, i + 100]), range(16)))
    assert results == [[10 * i, 10 * (i + 100)] for i in range(16)]
    assert all(len(batch) <= 8 for batch in recorder.batches)
    assert sorted(x for batch in recorder.batches for x in batch) == sorted(
        list(range(16)) + list(range(100, 116)))
    assert len(recorder.batches) < 16  # callers were batched together, not one pass each
    assert batcher.stats.items == 32 and batcher.stats.largest <= 8


def test_a_caller_with_more_items_than_a_batch_is_split_in_order():
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=3, max_wait_ms=0)
    assert batcher.submit(list(range(7))) == [0, 10, 20, 30, 40, 50, 60]
    assert [len(b) for b in recorder.batches] == [3, 3, 1]


def test_a_lone_caller_does_not_wait_when_no_one_else_is_expected():
    batcher = DynamicBatcher(Recorder(), max_batch_size=16, max_wait_ms=10_000, expected_callers=lambda: 1)
    started = time.perf_counter()
    assert batcher.submit([4]) == [40]
    assert time.perf_counter() - started < 2.0


def test_the_wait_is_bounded_by_max_wait_ms():
    batcher = DynamicBatcher(Recorder(), max_batch_size=16, max_wait_ms=50)
    started = time.perf_counter()
    assert batcher.submit([1]) == [10]
    assert 0.04 <= time.perf_counter() - started < 2.0


def test_an_error_in_the_batch_reaches_its_callers_and_the_worker_keeps_going():
    def process(items: list[int]) -> list[int]:
        if -1 in items:
            raise ValueError("cannot embed -1")
        return items

    batcher = DynamicBatcher(process, max_batch_size=4, max_wait_ms=0)
    with pytest.raises(ValueError, match="cannot embed -1"):
        batcher.submit([-1])
    assert batcher.submit([5]) == [5]


def test_a_batch_function_returning_too_few_results_is_an_error():
    batcher = DynamicBatcher(lambda items: items[:-1], max_batch_size=4, max_wait_ms=0)
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        batcher.submit([1, 2])


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"):
        DynamicBatcher(Recorder(), max_batch_size=0, max_wait_ms=1)
    with pytest.raises(ValueError, match="max_wait_ms must be >= 0"):
        DynamicBatcher(Recorder(), max_batch_size=2, max_wait_ms=-1)
