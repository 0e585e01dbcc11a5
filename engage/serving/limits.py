"""What keeps the server answering under abuse and load: a request-body cap and admission control.

* `BodySizeLimit` (ASGI middleware) refuses a body over the cap with 413 before anything parses it: at
  once when `Content-Length` says so, otherwise as soon as the streamed bytes pass the cap.
* `Admission` lets `max_concurrent` scoring calls run in worker threads (scoring is CPU-bound torch and
  LightGBM work, so the event loop stays free for /health) with up to `max_queue` more waiting; beyond
  that it answers 503 with `Retry-After` at once instead of letting clients time out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engage.serving.options import MAX_BODY_BYTES
from engage.serving.parsing import RequestError

T = TypeVar("T")



class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the cap; rendered as 413 by the app's handler."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is over the limit of {limit:,} bytes; send a smaller photo")


class BodySizeLimit:
    """ASGI middleware: 413 for a request body over `max_bytes`, counted as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _send_error(send, 400, "Content-Length", "is not a number of bytes")
                return
            if int(declared) > self.max_bytes:
                await _send_error(send, 413, "body", BodyTooLarge(self.max_bytes).detail)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as e:
            # Normally the app's handler already answered; this covers a body read outside a route.
            if started:
                raise
            await _send_error(send, 413, "body", str(e.detail))


async def _send_error(send: Send, status: int, field: str, message: str) -> None:
    body = json.dumps({"error": {"field": field, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Admission:
    """At most `max_concurrent` calls running in threads and `max_queue` waiting; the rest get 503."""

    def __init__(self, max_concurrent: int = 8, max_queue: int = 64, retry_after_s: int = 1):
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be >= 0, got {max_queue}")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.limiter = anyio.CapacityLimiter(max_concurrent)
        self.admitted = 0  # running + waiting; only touched on the event loop, so no lock

    @property
    def running(self) -> int:
        return self.limiter.borrowed_tokens

    @property
    def waiting(self) -> int:
        return self.admitted - self.running

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker thread once a slot is free; RequestError(503) when the queue is full too."""
        if self.admitted >= self.max_concurrent + self.max_queue:
            raise RequestError(
                503,
                [(None, f"the server is busy ({self.running} drafts being scored, {self.waiting} waiting); "
                        f"retry after {self.retry_after_s} s")],
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.admitted += 1
        try:
            return await anyio.to_thread.run_sync(partial(fn, *args), limiter=self.limiter)
        finally:
            self.admitted -= 1
