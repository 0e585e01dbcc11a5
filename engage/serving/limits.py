"""What keeps the server answering under abuse and load: a guard on every request, and admission control.

* `RequestGuard` (ASGI middleware) refuses headers over `MAX_HEADER_BYTES` or `MAX_HEADERS` with 431 (h11
  only limits headers that arrive in pieces); refuses a body over the cap with 413 before anything parses
  it (at once when `Content-Length` says so, otherwise as soon as the streamed bytes pass the cap); answers
  408 when a body stalls (`read_timeout_s` without a byte, or `body_timeout_s` in all); and lingers like
  nginx: when an answer is sent before the client finished sending its body, the rest is read and
  discarded (up to `LINGER_BYTES` and `LINGER_S`) before the connection is closed, so that a client that
  sends its whole body before reading (Python's urllib) gets the answer instead of a broken pipe.
* `Admission` lets `max_concurrent` scoring calls run in worker threads (scoring is CPU-bound torch and
  LightGBM work, so the event loop stays free for /health) with up to `max_queue` more waiting; beyond
  that it answers 503 with `Retry-After` at once instead of letting clients time out.

Slow headers, idle connections and the number of connections are handled below ASGI, in
`engage.serving.connections`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engage.serving.options import MAX_BODY_BYTES
from engage.serving.parsing import RequestError

T = TypeVar("T")

#: Request line and headers larger than this, or more headers than this, are refused (431); an API key, a
#: browser's cookies and a multipart boundary fit many times over.
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 100
#: After an early answer, at most this much of the rest of a body is read and discarded before closing.
LINGER_BYTES = 32 * 1024 * 1024
#: ... and for at most this long.
LINGER_S = 10.0


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a streamed body passes the cap; rendered as 413 by the app's handler."""

    def __init__(self, limit: int):
        super().__init__(413, body_limit_message(limit))


def body_limit_message(limit: int) -> str:
    """What a 413 says: the limit in MB, and a photo that fits (base64 adds a third: a JSON body of `limit`
    bytes holds a photo of 3/4 of it; a feed shows photos 1080 px wide, a few hundred KB as a JPEG)."""
    mb = limit / 1024 / 1024
    photo = limit * 3 / 4 / 1024 / 1024
    return (f"the request body is over the limit of {mb:.3g} MB "
            f"({limit:,} bytes); send a photo under {photo:.3g} MB "
        "(base64 adds a third), e.g. resized to 1080 px on its long side and saved as a JPEG (quality 85: "
            "about 0.2-0.5 MB), which is what a feed shows")


class BodyTimeout(HTTPException):
    """Raised from `receive` when the client stops sending its body; rendered as 408 by the app's handler."""

    def __init__(self, message: str):
        super().__init__(408, message, headers={"Connection": "close"})


class RequestGuard:
    """ASGI middleware: header limits (431), body cap (413),
    body timeouts (408), draining before close (module doc)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, read_timeout_s: float = 15.0,
                 body_timeout_s: float = 60.0):
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        # The client may still be sending when an answer goes out; `pending` says so.
        state = {"pending": declared not in (None, b"0") or b"transfer-encoding" in headers,
                 "stalled": False, "received": 0, "started": False,
                 "asked": False}
        expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        deadline = time.monotonic() + self.body_timeout_s

        async def guarded_receive() -> Message:
            state["asked"] = True
            remaining = deadline - time.monotonic()
            try:
                with anyio.fail_after(max(0.0, min(self.read_timeout_s, remaining))):
                    message = await receive()
            except TimeoutError:
                state["stalled"] = True
                waited = "took longer than" if remaining <= self.read_timeout_s else "sent nothing for"
                limit = self.body_timeout_s if remaining <= self.read_timeout_s else self.read_timeout_s
                raise BodyTimeout(f"the client {waited} {limit:g} s while sending the request body") from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    state["pending"] = False
                if state["received"] > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            else:
                state["pending"] = False  # http.disconnect: nothing more will come
            return message

        async def lingering_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                headers = list(message.get("headers", []))
                # A connection whose request was not read to the end is not reused.
                if state["pending"] and not any(name.lower() == b"connection" for name, _ in headers):
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and state[
                "pending"]:
                await send({**message, "more_body": True})
                # A client that waits for "100 Continue" sends no body once it has the answer instead.
                if not state["stalled"] and (state["asked"] or not expects_continue):
                    await self._drain(receive)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        if len(scope["headers"]) > MAX_HEADERS or sum(len(k) + len(v) for k,
                                                      v in scope["headers"]) > MAX_HEADER_BYTES:
            await _send_error(lingering_send, 431, "headers",
                              f"are over the limit of {MAX_HEADERS} headers or "
                                                              f"{MAX_HEADER_BYTES:,} bytes; send fewer")
            return
        if declared is not None:
            if not declared.strip().isdigit():
                await _send_error(lingering_send, 400, "Content-Length", "is not a number of bytes")
                return
            if int(declared) > self.max_bytes:
                await _send_error(lingering_send, 413, "body", BodyTooLarge(self.max_bytes).detail)
                return
        try:
            await self.app(scope, guarded_receive, lingering_send)
        except (BodyTooLarge, BodyTimeout) as e:
            # Normally the app's handler already answered; this covers a body read outside a route.
            if state["started"]:
                raise
            await _send_error(lingering_send, e.status_code, "body", str(e.detail))

    async def _drain(self, receive: Receive) -> None:
        """Read and discard what the client still sends, within LINGER_BYTES and LINGER_S."""
        drained = 0
        with anyio.move_on_after(LINGER_S):
            while drained <= LINGER_BYTES:
                with anyio.move_on_after(self.read_timeout_s) as idle:
                    message = await receive()
                if idle.cancelled_caught or message["type"] != "http.request":
                    return
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


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
        """`fn(*args)` in a worker thread once a slot is free;
        RequestError(503) when the queue is full too."""
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
