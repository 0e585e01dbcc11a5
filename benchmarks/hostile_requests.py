"""What hostile requests cost `python serve.py`: status, seconds, the server's extra peak memory, answer size.

    python benchmarks/hostile_requests.py --model models/engage            # starts serve.py itself
    python benchmarks/hostile_requests.py --url http://127.0.0.1:8000 --pid 1234   # a server already running
    python benchmarks/hostile_requests.py --model models/engage --cases thin,stalled

Each case is sent alone to a loopback server; before it, the server's peak resident memory is reset
(`/proc/<pid>/clear_refs`), so "extra MB" is how far the request pushed the peak above what the process
held just before. After each case a valid draft must still get 200. Cases that hold a connection (a stalled
body, slow headers, an idle connection) report how long the server took to answer or close it, up to
`--wait` seconds. Prints one row per case and, with `--json`, the rows as JSON. See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from serve_process import start_serve  # benchmarks/serve_process.py (the script's own folder is on sys.path)

WHEN = "2025-03-02T18:00:00Z"


def thin_png(width: int, height: int = 1) -> bytes:
    """A greyscale PNG of width x height pixels, compressed to a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I",
                           len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT",
                                                                 zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def solid_png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def small_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(out, format="JPEG")
    return out.getvalue()


class Target:
    def __init__(self, url: str, pid: int | None, account: str):
        self.url, self.pid, self.account = url, pid, account
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80

    def reset_peak(self) -> None:
        if self.pid is not None:
            try:
                Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            except OSError:
                pass

    def memory_mb(self) -> tuple[float, float] | None:
        """(current, peak) resident MB of the server process."""
        if self.pid is None:
            return None
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def draft(self, **fields: Any) -> dict[str, Any]:
        return {"account": self.account, "caption": "benchmark draft", "posted_at": WHEN, **fields}


def raw_exchange(target: Target, request: bytes, wait: float, then: bytes = b"") -> tuple[str, float]:
    """Send `request` on a socket, then nothing: (what came back
    first, seconds until the server answered or closed)."""
    with socket.create_connection((target.host, target.port), timeout=wait) as s:
        s.sendall(request)
        started = time.perf_counter()
        try:
            data = s.recv(65536)
        except TimeoutError:
            return f"nothing within {wait:.0f} s (still open)", time.perf_counter() - started
        except ConnectionResetError:
            return "connection reset", time.perf_counter() - started
        first = data.split(b"\r\n", 1)[0].decode(errors="replace") if data else "closed without an answer"
        return first, time.perf_counter() - started


def post(build: Callable[[Target], dict[str, Any]],
         path: str = "/v1/score") -> Callable[[Target, float], dict[str, Any]]:
    def run(target: Target, wait: float) -> dict[str, Any]:
        request = build(target)  # built before the clock starts
        started = time.perf_counter()
        response = httpx.post(f"{target.url}{path}", timeout=max(wait, 300), **request)
        return {"status": response.status_code, "seconds": time.perf_counter() - started,
                "answer bytes": len(response.content)}
    return run


def with_health_probe(case: Callable[[Target, float],
                                     dict[str, Any]]) -> Callable[[Target, float], dict[str, Any]]:
    """The case, while another thread measures the slowest /health answer meanwhile."""
    def run(target: Target, wait: float) -> dict[str, Any]:
        done = threading.Event()
        slowest = [0.0]

        def probe() -> None:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    httpx.get(f"{target.url}/health", timeout=60)
                except httpx.TransportError:
                    pass
                slowest[0] = max(slowest[0], time.perf_counter() - started)
                time.sleep(0.05)

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        try:
            result = case(target, wait)
        finally:
            done.set()
            thread.join()
        return {**result, "slowest /health s": slowest[0]}
    return run


def stalled_body(target: Target, wait: float) -> dict[str, Any]:
    body = json.dumps(target.draft()).encode()
    head = (f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) + 1000}\r\n\r\n").encode()
    first, seconds = raw_exchange(target, head + body, wait)
    return {"status": first, "seconds": seconds}


def slow_headers(target: Target, wait: float) -> dict[str, Any]:
    first, seconds = raw_exchange(target, b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", wait)
    return {"status": first, "seconds": seconds}


def idle_connection(target: Target, wait: float) -> dict[str, Any]:
    first, seconds = raw_exchange(target, b"", wait)
    return {"status": first, "seconds": seconds}


def disconnect_mid_body(target: Target, wait: float) -> dict[str, Any]:
    body = json.dumps(target.draft()).encode()
    head = (f"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) + 1000}\r\n\r\n").encode()
    started = time.perf_counter()
    with socket.create_connection((target.host, target.port)) as s:
        s.sendall(head + body)
        time.sleep(0.3)
    time.sleep(0.5)
    return {"status": "client gone", "seconds": time.perf_counter() - started}


def urllib_oversized(target: Target, wait: float) -> dict[str, Any]:
    """Python's urllib sends the whole 11 MB body before it reads the answer."""
    body = b'{"account": "' + b"a" * (11 * 1024 * 1024) + b'"}'
    request = urllib.request.Request(f"{target.url}/v1/score", data=body,
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status: Any = response.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (urllib.error.URLError, OSError) as e:
        status = f"{type(getattr(e, 'reason', e)).__name__}"
    return {"status": status, "seconds": time.perf_counter() - started}


def many_unknown_keys(n: int) -> Callable[[Target], dict[str, Any]]:
    def build(target: Target) -> dict[str, Any]:
        body = json.dumps({**target.draft(), **{f"k{i}": 0 for i in range(n)}})
        return {"content": body.encode(), "headers": {"Content-Type": "application/json"}}
    return build


def history_form(number: str) -> Callable[[Target], dict[str, Any]]:
    def build(target: Target) -> dict[str, Any]:
        return {"data": {"account": target.account, "caption": "x",
            "history": f'[{{"caption": "a", "posted_at": "2024-01-01T00:00:00Z", "likes": {number}}}]'}}
    return build


def cases(thin_widths: tuple[int, ...]) -> dict[str, Callable[[Target, float], dict[str, Any]]]:
    out: dict[str, Callable[[Target, float], dict[str, Any]]] = {}
    for width in thin_widths:
        png = base64.b64encode(thin_png(width)).decode()
        out[f"thin photo {width}x1 PNG ({len(thin_png(width))} bytes), draft"] = post(lambda t, p=png: {
            "json": t.draft(image=p)})
        out[f"thin photo {width}x1 PNG, history photo"] = post(lambda t, p=png: {"json": t.draft(history=[
            {"caption": "earlier", "posted_at": "2025-01-01T00:00:00Z", "likes": 3, "image": p}])})
    big = base64.b64encode(solid_png(6300, 6300)).decode()
    out["largest accepted photo: 6300x6300 PNG (39.7 MP), draft"] = post(lambda t: {
        "json": t.draft(image=big)})
    digits = "7" * 5000
    out["5,000-digit number in JSON"] = post(lambda t: {"content": json.dumps(t.draft()).replace(
        '"account"', f'"followers": {digits}, "account"').encode(),
        "headers": {"Content-Type": "application/json"}})
    out["5,000-digit number in multipart history"] = post(history_form(digits))
    out["700,000 unknown keys (9.2 MB)"] = with_health_probe(post(many_unknown_keys(700_000)))
    out["5 MB unknown key name"] = post(lambda t: {"json": {**t.draft(), "k" * (5 * 1024 * 1024): 1}})
    out["unknown key holding markup"] = post(lambda t: {"json": {**t.draft(),
                                                                 "<script>alert(1)</script>": 1}})
    out["Content-Encoding: gzip"] = post(lambda t: {"content": zlib.compress(json.dumps(t.draft()).encode()),
        "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"}})
    out["account of white space"] = post(lambda t: {"json": {**t.draft(), "account": "   "}})
    out["stalled body (Content-Length 1,000 bytes too large)"] = stalled_body
    out["slow headers (never finished)"] = slow_headers
    out["idle connection (nothing sent)"] = idle_connection
    out["client disconnects mid-body"] = disconnect_mid_body
    out["11 MB body sent by urllib"] = urllib_oversized
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="bundle or model URI to serve (starts serve.py)")
    parser.add_argument("--url", help="a loopback server already running instead")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to measure its memory")
    parser.add_argument("--serve-args", default="", help="extra serve.py arguments, e.g. '--read-timeout 5'")
    parser.add_argument("--thin", default="10000,65000",
                        help="widths of the thin photos (default: 10000,65000)")
    parser.add_argument("--cases", default="",
                        help="comma-separated words; run only the cases whose name has one")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait on held connections (default 30)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args()
    if not args.model and not args.url:
        parser.error("give --model (to start serve.py) or --url")
    process = None
    log = Path(tempfile.mkdtemp(prefix="hostile-")) / "serve.log"
    if args.url:
        if urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("only loopback URLs are accepted")
        url, pid = args.url.rstrip("/"), args.pid
    else:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0"}
        process, url = start_serve(["--model", args.model, *args.serve_args.split()], log, env)
        pid = process.pid
    try:
        account = httpx.get(f"{url}/v1/accounts").json()["accounts"][0]
        target = Target(url, pid, account)
        valid = {"json": target.draft(image=base64.b64encode(small_jpeg()).decode())}
        widths = tuple(int(w) for w in args.thin.split(",") if w)
        wanted = [w.strip().lower() for w in args.cases.split(",") if w.strip()]
        rows = []
        for name, case in cases(widths).items():
            if wanted and not any(w in name.lower() for w in wanted):
                continue
            time.sleep(0.5)
            target.reset_peak()
            before = target.memory_mb()
            lines_before = len(log.read_text(errors="replace").splitlines()) if process else 0
            result = case(target, args.wait)
            after = target.memory_mb()
            row: dict[str, Any] = {"case": name, **result}
            if before and after:
                row["extra peak MB"] = round(after[1] - before[0], 1)
            if process:
                new = log.read_text(errors="replace").splitlines()[lines_before:]
                row["log lines"] = len(new)
                row["tracebacks"] = sum("Traceback" in line for line in new)
            following = httpx.post(f"{url}/v1/score", timeout=120, **valid)
            row["next draft"] = following.status_code
            rows.append(row)
            shown = ", ".join(f"{k}: {round(v, 2) if isinstance(v, float) else v}" for k,
                              v in row.items() if k != "case")
            print(f"{name:55s} {shown}", flush=True)
        if args.json:
            print(json.dumps(rows, indent=1))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
