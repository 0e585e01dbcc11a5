"""Helpers for the serving tests: real uvicorn servers on free loopback ports, photos, and a small scorer.

* `ThreadServer`: the app in a uvicorn thread of this process (fast; used with `RecordingScorer`).
* `ServeProcess`: `python serve.py ...` in a subprocess against a real bundle (what users run).
"""

from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pandas as pd
import uvicorn
from PIL import Image

from engage.embed.decoding import open_image
from engage.errors import DataError, DraftError, ModelError
from engage.scoring.answers import Answer, BestHour, ScoreAnswer

ROOT = Path(__file__).resolve().parents[2]
#: A caption no response or log may ever repeat.
SECRET = "SECRET-caption-do-not-echo-7Qx"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(size: int = 96, colour: tuple[int, int, int] = (200, 80, 40), fmt: str = "JPEG",
          pattern: bool = True) -> bytes:
    """A small photo with some structure (a gradient and a square), encoded as `fmt`."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = np.empty((size, size, 3), np.uint8)
    for c in range(3):
        pixels[..., c] = np.clip(colour[c] * 0.6 + ramp[None, :] * 0.4 * (c + 1) / 3, 0, 255)
    if pattern:
        pixels[size // 4: size // 2, size // 4: size // 2] = (255 - np.array(colour)).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format=fmt)
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares width x height pixels, with almost no pixel data (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I",
                           len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(
        b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def flat_png(width: int, height: int, mode: str = "RGB") -> bytes:
    """A real PNG of one colour: a few hundred bytes for a 65000 x 1 strip, 128 KB for 6300 x 6300 pixels."""
    out = io.BytesIO()
    Image.new(mode, (width, height),
              128 if mode == "L" else (90, 140, 200)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def reset_peak_memory(pid: int) -> None:
    """Start measuring a process's peak resident memory afresh (Linux: clear_refs 5 resets VmHWM)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident since the last reset) MB of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


class RecordingScorer:
    """A stand-in model for pure HTTP behaviour: decodes the photo like the real one, scores from the caption.

    Expected likes fall with each hashtag, so ranking is predictable; `gate` (when set) holds every
    `score` call until released, to fill the server's slots deterministically.
    """

    embedder = "fake:embedder"

    def __init__(self, version: str = "fake/1", accounts: tuple[str, ...] = ("anna.bakes", "ben.runs")):
        self.version = version
        # the targets it answers (for /v1/targets)
        self.models = {"likes": None, "comments": None, "saves": None}
        self.feed_photos = {"anna.bakes": ["data:image/jpeg;base64,AAAA", "data:image/jpeg;base64,BBBB"]}
        self.info = {"name": "engage"}
        self.context_posts = pd.DataFrame({"account": list(accounts) * 2})
        self.drafts: list[Any] = []
        self.best_hour_drafts: list[Any] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Semaphore(0)

    def score(self, draft: Any) -> Answer:
        self.entered.release()
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if draft.image is not None:
            open_image(draft.image, max_pixels=40_000_000)  # raises DataError like the real model
        for i, post in enumerate(draft.history or []):  # the real model names a history photo by its place
            if post.image is not None:
                try:
                    open_image(post.image, max_pixels=40_000_000)
                except DataError as e:
                    raise DraftError(e.message, field=f"history[{i}].image") from e
        self.drafts.append(draft)
        expected = 100.0 - 3 * draft.caption.count("#") + (10.0 if draft.image else 0.0)
        flags = [] if draft.account in set(self.context_posts["account"]) else [
            {"code": "unknown_account", "message": "no history"}]
        return ScoreAnswer.model_validate({
            "model_version": self.version, "embedder": self.embedder,
            "likes": {"expected": expected, "low": expected * 0.5, "high": expected * 1.5},
            "comments": {"expected": 5.0, "low": 2.0, "high": 9.0},
            # Saves grow with each "tip" in the caption, so a ranking by saves differs from one by likes.
            "saves": {"expected": 10.0 + 5 * draft.caption.lower().count("tip"), "low": 5.0, "high": 40.0},
            "authenticity_risk": 0.1, "risk_label": "an engagement-drop proxy (fake model)", "flags": flags,
            "factors": [{"feature": "number of hashtags", "contribution": -0.1}],
        })

    def best_hour(self, draft: Any, *, days: int = 7, goal: str = "likes",
                  time_zone: str = "UTC") -> BestHour:
        if goal not in self.models:
            raise ModelError(f"this model has no {goal} target")
        self.best_hour_drafts.append(draft)
        expected = {"likes": 123.0, "comments": 6.0, "saves": 45.0}[goal]
        return BestHour(posted_at=datetime(2030, 1, 1, 18, tzinfo=ZoneInfo(time_zone)), time_zone=time_zone,
                        goal=goal, expected=expected, expected_likes=123.0)

    def serving_settings(self) -> dict[str, Any]:
        return {"batching": {"max_batch_size": 1},
                "vector_cache": {"max_items": 0, "items": 0, "hits": 0, "misses": 0}}


class ThreadServer:
    """`app` served by uvicorn in a thread on a free port; `url` once started (lifespan included)."""

    def __init__(self, app: Any):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def wait_ready(url: str, timeout: float = 120, process: subprocess.Popen | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"serve.py exited with {process.returncode} before it was ready")
        try:
            response = httpx.get(f"{url}/ready", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready after {timeout} s")


class ServeProcess:
    """`python serve.py --model <bundle> --port <free> [args]` with its output in `log_path`."""

    def __init__(self, model: str | Path, log_path: Path, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # The outcome store beside the log, unless the test names one: never a file in the checkout.
        store = [] if "--outcomes" in args else ["--outcomes",
                                                 f"sqlite:///{Path(log_path).parent / 'outcomes.db'}"]
        self.command = [sys.executable, str(ROOT / "serve.py"), "--model", str(model), "--port",
                        str(self.port), *store,
                        *args]
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0", **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        return self

    def __enter__(self) -> ServeProcess:
        self.start()
        try:
            self.ready = wait_ready(self.url, process=self.process)
        except Exception:
            self.__exit__()
            raise RuntimeError(f"serve.py did not become ready; its log:\n{self.log()}") from None
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
