"""Dynamic batching: items submitted from many threads at once go through one call of a batch function.

    batcher = DynamicBatcher(embed_many, max_batch_size=16, max_wait_ms=5)
    vectors = batcher.submit([item1, item2])      # from any thread; blocks until its results are ready

This is what Triton's dynamic batcher and Ray Serve's `@serve.batch` do: the first item that arrives
opens a batch; the batch is run when it holds `max_batch_size` items, when `max_wait_ms` have passed since
it opened, or as soon as every caller that may still submit has done so (`expected_callers`, e.g. the
number of requests being scored right now: a lone request never waits). One worker thread runs the batch
function, so concurrent drafts cost one forward pass per model instead of one each.

The batch function gets a list of items and returns one result per item, in order. If it raises, every
caller in that batch gets the exception. A caller's items may be split over two batches when they do not
fit in one; its results still come back in its own order.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Request(Generic[T]):
    items: Sequence[T]
    future: Future = field(default_factory=Future)
    results: list[Any] = field(default_factory=list)  # filled batch by batch (a caller may span two)


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    largest: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {"batches": self.batches, "items": self.items, "largest_batch": self.largest,
                "mean_batch": round(self.items / self.batches, 2) if self.batches else 0.0}


class DynamicBatcher(Generic[T, R]):
    """Runs `process(items) -> results` on batches gathered from concurrent `submit` calls."""

    def __init__(
        self,
        process: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int,
        max_wait_ms: float,
        expected_callers: Callable[[], int] | None = None,
        name: str = "batcher",
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.process = process
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.expected_callers = expected_callers
        self.stats = BatchStats()
        self._queue: queue.Queue[_Request[T]] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name=f"engage-{name}", daemon=True)
        self._worker.start()

    def settings(self) -> dict[str, float | int]:
        return {"max_batch_size": self.max_batch_size, "max_wait_ms": self.max_wait_ms}

    def submit(self, items: Sequence[T]) -> list[R]:
        """The results of `items` (in order), computed in batches with other threads' items."""
        if not items:
            return []
        request: _Request[T] = _Request(items)
        self._queue.put(request)
        return request.future.result()

    # -- the worker ---------------------------------------------------------------------------------
    def _run(self) -> None:
        carry: list[tuple[_Request[T], int]] = []  # (request, first item not yet batched)
        while True:
            if not carry:
                carry.append((self._queue.get(), 0))
            self._fill(carry)
            batch, carry = self._take(carry)
            self._execute(batch)

    def _fill(self, pending: list[tuple[_Request[T], int]]) -> None:
        """Add requests from the queue until the batch is full, the wait is over or no one else is coming."""
        deadline = time.monotonic() + self.max_wait_ms / 1000
        while sum(len(r.items) - start for r, start in pending) < self.max_batch_size:
            try:
                pending.append((self._queue.get_nowait(), 0))
                continue
            except queue.Empty:
                pass
            expected = self.expected_callers() if self.expected_callers is not None else None
            if expected is not None and len(pending) >= expected:
                return  # everyone who could join has joined
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                pending.append((self._queue.get(timeout=left), 0))
            except queue.Empty:
                return

    def _take(self, pending: list[tuple[_Request[T], int]]
              ) -> tuple[list[tuple[_Request[T], int, int]], list[tuple[_Request[T], int]]]:
        """Split pending requests into this batch (request, start, stop) and what is left for the next."""
        batch: list[tuple[_Request[T], int, int]] = []
        room = self.max_batch_size
        rest: list[tuple[_Request[T], int]] = []
        for request, start in pending:
            if room == 0:
                rest.append((request, start))
                continue
            stop = min(len(request.items), start + room)
            batch.append((request, start, stop))
            room -= stop - start
            if stop < len(request.items):
                rest.append((request, stop))
        return batch, rest

    def _execute(self, batch: list[tuple[_Request[T], int, int]]) -> None:
        items = [item for request, start, stop in batch for item in request.items[start:stop]]
        try:
            results = list(self.process(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        except BaseException as e:  # every caller of this batch hears about it; the worker keeps running
            for request, _, _ in batch:
                if not request.future.done():
                    request.future.set_exception(e)
            return
        self.stats.batches += 1
        self.stats.items += len(items)
        self.stats.largest = max(self.stats.largest, len(items))
        offset = 0
        for request, start, stop in batch:
            if request.future.done():  # an earlier part of it failed
                offset += stop - start
                continue
            request.results.extend(results[offset:offset + stop - start])
            offset += stop - start
            if stop == len(request.items):
                request.future.set_result(request.results)
