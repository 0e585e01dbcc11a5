"""Connection limits below ASGI: slow or missing request headers, and too many open connections.

uvicorn's own options cover idle keep-alive connections (`timeout_keep_alive`) and the size of request
headers (`h11_max_incomplete_event_size`), but nothing bounds how long a client may take to send its
headers (slowloris), nor a connection that sends nothing at all, and its `limit_concurrency` only answers
503 once a request's headers have arrived, which a slow client never lets happen. `guarded_protocol`
returns uvicorn's h11 protocol with both added:

* the request line and headers must arrive within `header_timeout_s` of the connection opening, or of the
  first byte of a later request on the same connection; otherwise 408 (or a plain close when nothing at
  all was sent) and the connection is closed;
* beyond `max_connections` open connections, a new one is answered 503 with `Retry-After` and closed at
  once, before anything is read from it.

Bodies are guarded in ASGI (`engage.serving.limits.RequestGuard`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("engage.serving")

#: A refused connection is closed this long after its 503 (see connection_made).
_REFUSED_CLOSE_S = 0.5


def _raw_answer(status: int, reason: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": {"field": None, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"{extra}connection: close\r\n\r\n")
    return head.encode() + body


def guarded_protocol(header_timeout_s: float, max_connections: int,
                     retry_after_s: int = 1) -> type[H11Protocol]:
    """uvicorn's `H11Protocol` with a header timeout and a
    connection limit (pass as `uvicorn.Config(http=...)`)."""
    timeout_answer = _raw_answer(408, "Request Timeout", f"the request headers did not arrive within "
                                 f"{header_timeout_s:g} s; send the whole request promptly")
    busy_answer = _raw_answer(503, "Service Unavailable",
                              f"the server has {max_connections} connections open, "
        f"its limit; retry after {retry_after_s} s", f"retry-after: {retry_after_s}\r\n")

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _bytes_seen = False
        _refused = False

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning("refused a connection: %d open, the limit is %d", len(self.connections) - 1,
                            max_connections)
                self._refused = True
                transport.write(busy_answer)
                # Closed a moment later, reading (and ignoring) the request meanwhile: closing a socket with
                # unread data resets it, and the client might then lose the answer.
                self.loop.call_later(_REFUSED_CLOSE_S, transport.close)
                return
            self._start_header_timer()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._bytes_seen = self._bytes_seen or bool(data)
            super().data_received(data)
            self._watch_headers()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # the next request's clock starts with its first byte (keep-alive covers idling)
            self._bytes_seen = False
            self._watch_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_header_timer()
            super().connection_lost(exc)

        def _watch_headers(self) -> None:
            """Headers of a request are in progress while h11 waits for them and some byte of it has come."""
            waiting = self.conn.their_state is h11.IDLE and self._bytes_seen
            if waiting and self._header_timer is None:
                self._start_header_timer()
            elif not waiting and self.conn.their_state is not h11.IDLE:
                self._stop_header_timer()

        def _start_header_timer(self) -> None:
            self._stop_header_timer()
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _stop_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a response is still being written; its own timeouts apply
            if self._bytes_seen:
                log.info("closed a connection from %s: its request headers took over %g s",
                         f"{self.client[0]}:{self.client[1]}" if self.client else "?", header_timeout_s)
                self.transport.write(timeout_answer)
            self.transport.close()

    return GuardedH11Protocol
