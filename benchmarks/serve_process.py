"""Start `python serve.py` on a free loopback port for a benchmark and wait until /ready (one copy for every
benchmark script that drives a server of its own), and make photos the server has never seen."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(options: list[str], log: Path, env: dict[str, str],
                ready_within_s: float = 300) -> tuple[subprocess.Popen, str]:
    """`serve.py <options> --port <free port>`, its output
    in `log`; returns (process, base URL) once ready."""
    port = free_port()
    command = [sys.executable, str(ROOT / "serve.py"), *options, "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve.py exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"serve.py was not ready within {ready_within_s:.0f} s; see {log}")


def stop_serve(process: subprocess.Popen) -> None:
    """Terminate a server started for a benchmark, killing it if it does not stop within 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def numbered_jpeg(jpeg: bytes, number: int) -> bytes:
    """The same JPEG with a comment segment holding `number`: same pixels, new bytes (a new SHA-256), so the
    service's vector cache cannot answer it from memory, as for a real new draft."""
    comment = f"engage benchmark {number}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]
