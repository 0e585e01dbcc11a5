"""Slow, stalled, vanished and greedy clients against `python serve.py` on the real smoke model: every held
connection is answered or closed within its timeout, a full server refuses new connections at once, a
client that sends its whole body before reading (Python's urllib) sees the 413, ordinary disconnects are
one log line without a traceback, and after each case the next valid draft is scored with 200.

The server runs with short timeouts (`--read-timeout 1 --body-timeout 3 --keep-alive 1`) so that the
module takes seconds; the defaults (15 s, 60 s, 5 s) only change the waits.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_helpers import ServeProcess, photo

pytestmark = pytest.mark.slow  # needs the session's trained smoke model

READ_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE, MAX_CONNECTIONS = 1.0, 3.0, 1.0, 6
#: Scheduling slack on two shared cores.
SLACK = 1.5
WHEN = "2025-03-02T18:00:00Z"
PHOTO_B64 = base64.b64encode(photo(160)).decode()


@pytest.fixture(scope="module")
def served(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    with ServeProcess(bundle, tmp_path_factory.mktemp("slow") / "serve.log", "--read-timeout",
                      str(READ_TIMEOUT),
                      "--body-timeout", str(BODY_TIMEOUT), "--keep-alive", str(KEEP_ALIVE),
                      "--max-connections", str(MAX_CONNECTIONS)) as server:
        yield server


@pytest.fixture(scope="module")
def account(served: ServeProcess) -> str:
    return httpx.get(f"{served.url}/v1/accounts").json()["accounts"][0]


def valid(account: str) -> dict[str, Any]:
    return {"account": account, "caption": "A valid draft after the odd one", "image": PHOTO_B64,
            "posted_at": WHEN}


def assert_next_draft_scored(server: ServeProcess, account: str) -> None:
    response = httpx.post(f"{server.url}/v1/score", json=valid(account), timeout=120)
    assert response.status_code == 200, response.text
    assert "Traceback" not in server.log()


def connect(server: ServeProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT + BODY_TIMEOUT + 10)


def read_until_closed(conn: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and the seconds that took."""
    started = time.perf_counter()
    reply = b""
    try:
        while chunk := conn.recv(65536):
            reply += chunk
    except ConnectionResetError:
        pass
    return reply, time.perf_counter() - started


def head(content_length: int, path: str = "/v1/score") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\n\r\n").encode()


def test_a_stalled_body_is_answered_408_after_the_read_timeout(served: ServeProcess, account: str) -> None:
    body = json.dumps(valid(account)).encode()
    with connect(served) as conn:
        conn.sendall(head(len(body) + 1000) + body)  # declares 1,000 bytes it never sends
        reply, seconds = read_until_closed(conn)
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]["field"] == "body"
    assert READ_TIMEOUT * 0.9 <= seconds < READ_TIMEOUT + SLACK
    assert_next_draft_scored(served, account)


def test_a_body_sent_a_byte_at_a_time_is_cut_off_at_the_body_timeout(served: ServeProcess,
                                                                     account: str) -> None:
    with connect(served) as conn:
        conn.sendall(head(10_000))
        started = time.perf_counter()
        reply = b""
        conn.settimeout(0.3)
        while time.perf_counter() - started < BODY_TIMEOUT + SLACK + 2:
            try:
                conn.sendall(b" ")
                reply += conn.recv(65536)
            except TimeoutError:
                continue  # the server said nothing yet: send the next byte
            except (BrokenPipeError, ConnectionResetError):
                break
            if reply:
                break
        seconds = time.perf_counter() - started
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
    assert BODY_TIMEOUT * 0.9 <= seconds < BODY_TIMEOUT + SLACK
    assert_next_draft_scored(served, account)


@pytest.mark.parametrize(("sent", "answer"), [
    # slowloris: headers never end
    (b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", b"HTTP/1.1 408 "),
    (b"", b""),  # a connection that sends nothing is closed without an answer
])
def test_headers_that_do_not_arrive_in_time_are_answered_408_and_closed(
    served: ServeProcess, account: str, sent: bytes, answer: bytes
) -> None:
    with connect(served) as conn:
        conn.sendall(sent)
        reply, seconds = read_until_closed(conn)
    assert reply.startswith(answer) and (answer or reply == b""), reply[:200]
    assert READ_TIMEOUT * 0.9 <= seconds < READ_TIMEOUT + SLACK
    assert_next_draft_scored(served, account)


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    served: ServeProcess, account: str) -> None:
    with connect(served) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        reply, seconds = read_until_closed(conn)
    assert reply.startswith(b"HTTP/1.1 200 ") and b'{"status":"ok"}' in reply
    assert KEEP_ALIVE * 0.9 <= seconds < KEEP_ALIVE + SLACK


def test_beyond_the_connection_limit_a_new_connection_is_refused_at_once(
    served: ServeProcess, account: str) -> None:
    held = [connect(served) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.1)
        started = time.perf_counter()
        refused = httpx.get(f"{served.url}/health", timeout=5)
        seconds = time.perf_counter() - started
    finally:
        for conn in held:
            conn.close()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert "connections open" in refused.json()["error"]["message"]
    assert seconds < 0.5
    time.sleep(0.2)
    assert_next_draft_scored(served, account)


def test_a_client_that_disconnects_mid_body_is_one_log_line_without_a_traceback(
    served: ServeProcess, account: str) -> None:
    before = served.log().count("\n")
    body = json.dumps(valid(account)).encode()
    with connect(served) as conn:
        conn.sendall(head(len(body) + 1000) + body)
        time.sleep(0.3)
    time.sleep(0.5)
    new = served.log().splitlines()[before:]
    assert sum("disconnected before sending the whole body" in line for line in new) == 1, new
    assert len(new) <= 2, new  # that line and uvicorn's access line at most
    assert_next_draft_scored(served, account)


def test_urllib_sending_an_11_mb_body_before_reading_gets_the_413(served: ServeProcess, account: str) -> None:
    body = json.dumps({**valid(account), "caption": "x" * (11 * 1024 * 1024)}).encode()
    request = urllib.request.Request(f"{served.url}/v1/score", data=body,
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read())["error"]["field"] == "body"
    assert_next_draft_scored(served, account)


def test_a_chunked_body_streamed_past_the_cap_gets_the_413_before_the_client_reads(
    served: ServeProcess, account: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    chunks = (b"x" * (1024 * 1024) for _ in range(12))
    conn.request("POST", "/v1/score", body=chunks, headers={"Content-Type": "application/json"},
                 encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["field"] == "body"
    conn.close()
    assert_next_draft_scored(served, account)


@pytest.mark.parametrize("headers", [
    [("X-Flood", "y" * 20_000)],  # one header over the 16 KB limit
    [(f"X-Flood-{i}", "y" * 10) for i in range(2000)],  # many small ones, over it together
])
def test_a_header_flood_is_refused(served: ServeProcess, account: str,
                                   headers: list[tuple[str, str]]) -> None:
    """h11 answers 400 to headers over 16 KB that arrive in pieces; the app 431 to those that came at once."""
    with connect(served) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
            f"{k}: {v}\r\n".encode() for k, v in headers)
                     + b"\r\n")
        reply, seconds = read_until_closed(conn)
    assert reply.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")) and seconds < SLACK, reply[:100]
    assert_next_draft_scored(served, account)
