"""Load test of the HTTP service on loopback: many concurrent clients, valid drafts and bad requests, for a
bounded time; prints requests/s, latency percentiles, and counts of 5xx, 503 and connection errors (JSON).

    python benchmarks/load_test.py --model models/engage                     # starts serve.py itself
    python benchmarks/load_test.py --url http://127.0.0.1:8000               # a running server
    python benchmarks/load_test.py --model models/engage --max-concurrent 2 --max-queue 8   # overload

Each of `--clients` asyncio tasks is one client with its own connection (httpx.AsyncClient, keep-alive)
sending one request after another until `--seconds` have passed or `--max-requests` were sent in all:

  valid   POST /v1/score for a known account: JSON with a 1080x1080 JPEG base64 (`--photo-share` of valid
          drafts), multipart with the same JPEG as a file (half as often), JSON without a photo (the rest),
          and now and then POST /v1/compare with two drafts;
  bad     (`--bad-share` of all) invalid JSON, an unknown field, a caption over 2,200 characters, an image
          that is not base64, a text file sent as the photo, a truncated JPEG: each must get its 4xx.

A 503 (overload beyond --max-queue) is counted apart from other 5xx and, like a polite client, the
client waits its Retry-After before the next request (`--ignore-retry-after` to hammer instead). Requests
time out after `--timeout` s (counted as timeouts). Every valid draft carries a photo and caption never sent
before (numbered), so the server's vector cache answers nothing from memory.

`--batching-comparison` measures what dynamic batching buys: against serve.py with batching on
(`--batch-size`) and then off (1), one sequential client and then `--clients` concurrent ones, each for
`--seconds`; it prints drafts scored per second and p50/p99 of each, and the concurrent/sequential ratio. Only
loopback URLs are accepted. The targets (zero 5xx other than 503, zero connection errors and timeouts, p99
under 1 s) are reported, not asserted: the figures depend on the machine, and a shared machine makes them
noisy (its load average is in the output).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import skimage.data
from PIL import Image

# benchmarks/serve_process.py: the script's own folder is on sys.path
from serve_process import numbered_jpeg, start_serve, stop_serve

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CAPTION = "Slow Sunday: fresh coffee on the balcony before the market #coffee #sunday #slowliving"


@dataclass
class Outcome:
    kind: str  # what was sent, e.g. "valid:json+photo", "bad:truncated_jpeg"
    seconds: float
    status: int | None  # None: no HTTP answer
    error: str | None = None  # exception type when there was no answer
    expected: bool = True  # the status is the one this kind of request should get


def jpeg(size: int) -> bytes:
    picture = Image.fromarray(skimage.data.coffee()).resize((size, size), Image.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


class Requests:
    """The request mix: `pick(rng)` -> (kind, httpx request arguments, expected statuses)."""

    def __init__(self, accounts: list[str], photo: bytes, posted_at: str | None, photo_share: float,
                 bad_share: float):
        self.accounts = accounts
        self.photo = photo
        self.posted_at = posted_at
        self.photo_share = photo_share
        self.bad_share = bad_share
        self.sent = 0

    def fresh_photo(self) -> bytes:
        """The photo as bytes never sent before (same pixels),
        so the server's vector cache cannot answer it."""
        self.sent += 1
        return numbered_jpeg(self.photo, self.sent)

    def _fields(self, rng: random.Random, caption: str | None = None) -> dict[str, Any]:
        self.sent += 1
        # a new caption, for the same reason
        caption = f"{CAPTION} #{self.sent}" if caption is None else caption
        fields: dict[str, Any] = {"account": rng.choice(self.accounts), "caption": caption}
        if self.posted_at:
            fields["posted_at"] = self.posted_at
        return fields

    def pick(self, rng: random.Random) -> tuple[str, str, dict[str, Any], set[int]]:
        ok = {200}
        if rng.random() < self.bad_share:
            kind = rng.choice(["invalid_json", "unknown_field", "caption_too_long", "image_not_base64",
                               "text_as_photo", "truncated_jpeg"])
            fields = self._fields(rng)
            if kind == "invalid_json":
                return f"bad:{kind}", "/v1/score", {"content": b'{"account": "a", "caption": ',
                                                    "headers": {"Content-Type": "application/json"}}, {422}
            if kind == "unknown_field":
                return f"bad:{kind}", "/v1/score", {"json": {**fields, "likes": 10}}, {422}
            if kind == "caption_too_long":
                return f"bad:{kind}", "/v1/score", {"json": {**fields, "caption": "x" * 3000}}, {422}
            if kind == "image_not_base64":
                return f"bad:{kind}", "/v1/score", {"json": {**fields, "image": "%%% not base64 %%%"}}, {400}
            if kind == "text_as_photo":
                return f"bad:{kind}", "/v1/score", {
                    "data": {k: str(v) for k, v in fields.items()},
                    "files": {"image": ("photo.jpg", b"just some text\n" * 40, "image/jpeg")}}, {400}
            truncated = base64.b64encode(self.photo[: len(self.photo) // 3]).decode()
            return f"bad:{kind}", "/v1/score", {"json": {**fields, "image": truncated}}, {400}
        draw = rng.random()
        if draw < 0.05 and self.photo_share < 1:  # --photo-share 1: a never-seen photo in every valid request
            drafts = [{"caption": CAPTION}, {"caption": CAPTION + " #more #tags #here"}]
            if self.posted_at:
                drafts = [{**d, "posted_at": self.posted_at} for d in drafts]
            return "valid:compare", "/v1/compare", {"json": {"account": rng.choice(self.accounts),
                                                             "drafts": drafts}}, ok
        if draw < 0.05 + self.photo_share * 2 / 3:
            photo_b64 = base64.b64encode(self.fresh_photo()).decode()
            return "valid:json+photo", "/v1/score", {"json": {**self._fields(rng), "image": photo_b64}}, ok
        if draw < 0.05 + self.photo_share:
            fields = {k: str(v) for k, v in self._fields(rng).items()}
            return "valid:multipart+photo", "/v1/score", {
                "data": fields, "files": {"image": ("draft.jpg", self.fresh_photo(), "image/jpeg")}}, ok
        return "valid:json", "/v1/score", {"json": self._fields(rng)}, ok


async def client_loop(index: int, url: str, mix: Requests, deadline: float, budget: list[int],
                      outcomes: list[Outcome],
        *, timeout: float, headers: dict[str, str], seed: int, honour_retry_after: bool) -> None:
    rng = random.Random(seed * 1000 + index)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, headers=headers) as client:
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            kind, path, request, expected = mix.pick(rng)
            started = time.perf_counter()
            try:
                response = await client.post(path, **request)
            except httpx.TimeoutException as e:
                outcomes.append(Outcome(kind, time.perf_counter() - started, None,
                                        f"timeout:{type(e).__name__}", False))
                continue
            except httpx.HTTPError as e:
                outcomes.append(Outcome(kind, time.perf_counter() - started, None, type(e).__name__, False))
                continue
            seconds = time.perf_counter() - started
            status = response.status_code
            outcomes.append(Outcome(kind, seconds, status, None, status in expected or status == 503))
            if status == 503 and honour_retry_after:
                wait = float(response.headers.get("Retry-After", "1"))
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))


def percentiles(seconds: list[float]) -> dict[str, float | int]:
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


def summarise(outcomes: list[Outcome], elapsed: float) -> dict[str, Any]:
    answered = [o for o in outcomes if o.status is not None]
    statuses = Counter(str(o.status) for o in answered)
    server_errors = sum(1 for o in answered if o.status >= 500 and o.status != 503)
    busy = sum(1 for o in answered if o.status == 503)
    errors = Counter(o.error for o in outcomes if o.error is not None)
    timeouts = sum(n for e, n in errors.items() if e.startswith("timeout:"))
    by_kind = {kind: {"statuses": dict(Counter(str(o.status) for o in outcomes if o.kind == kind)),
        **percentiles([o.seconds for o in outcomes if o.kind == kind and o.status not in (None, 503)])}
               for kind in sorted({o.kind for o in outcomes})}
    all_latency = percentiles([o.seconds for o in answered])
    return {
        "requests": len(outcomes),
        "seconds": round(elapsed, 1),
        "requests_per_s": round(len(outcomes) / elapsed, 1) if elapsed else None,
        "answered_per_s": round(len(answered) / elapsed, 1) if elapsed else None,
        "statuses": dict(sorted(statuses.items())),
        "server_errors_5xx_other_than_503": server_errors,
        "busy_503": busy,
        "connection_errors": sum(errors.values()) - timeouts,
        "timeouts": timeouts,
        "errors_by_type": dict(errors),
        "unexpected_status": sum(1 for o in answered if not o.expected),
        "latency_all_answers": all_latency,
        "latency_200": percentiles([o.seconds for o in answered if o.status == 200]),
        "latency_503": percentiles([o.seconds for o in answered if o.status == 503]),
        "by_kind": by_kind,
        "targets": {
            "zero_5xx_other_than_503": server_errors == 0,
            "zero_connection_errors_and_timeouts": not errors,
            "p99_under_1s": bool(all_latency.get("p99_ms", float("inf")) < 1000),
        },
    }


def start_server(args: argparse.Namespace, log: Path, env: dict[str, str], batch_size: int | None = None
                 ) -> tuple[subprocess.Popen, str]:
    return start_serve(["--model", args.model, "--tracking-uri", args.tracking_uri, "--max-concurrent",
        str(args.max_concurrent), "--max-queue", str(args.max_queue), "--log-level", "warning",
        "--batch-size", str(batch_size or args.batch_size), "--batch-wait-ms", str(args.batch_wait_ms)],
                       log, env)



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server on loopback, e.g. http://127.0.0.1:8000")
    where.add_argument("--model", help="start serve.py on this MLflow model URI or bundle directory")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db",
                        help="with --model: MLflow tracking store")
    parser.add_argument("--max-concurrent", type=int, default=8,
                        help="with --model: serve.py --max-concurrent (8)")
    parser.add_argument("--max-queue", type=int, default=64, help="with --model: serve.py --max-queue (64)")
    parser.add_argument("--batch-size", type=int, default=16, help="with --model: serve.py --batch-size (16)")
    parser.add_argument("--batch-wait-ms", type=float, default=5,
                        help="with --model: serve.py --batch-wait-ms (5)")
    parser.add_argument("--batching-comparison", action="store_true",
        help="with --model: one sequential client, then --clients clients, each for --seconds, "
        "against serve.py with batching on (--batch-size) and off (1); prints drafts/s of each")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--seconds", type=float, default=60, help="how long to send requests (default 60)")
    parser.add_argument("--max-requests", type=int, default=100_000,
                        help="stop after this many requests in all")
    parser.add_argument("--timeout", type=float, default=30,
                        help="seconds before a request counts as timed out")
    parser.add_argument("--photo-share", type=float, default=0.3,
        help="share of valid drafts with the photo (0.3); 1: every valid request has one, no /v1/compare")
    parser.add_argument("--bad-share", type=float, default=0.2, help="share of bad requests (0.2)")
    parser.add_argument("--photo-size", type=int, default=1080, help="side of the JPEG, pixels (1080)")
    parser.add_argument("--posted-at", default=None,
                        help="posted_at of the drafts (default: the server's now)")
    parser.add_argument("--api-key", default=os.environ.get("ENGAGE_API_KEY"),
                        help="X-API-Key (default: $ENGAGE_API_KEY)")
    parser.add_argument("--ignore-retry-after", action="store_true",
                        help="send the next request at once after a 503")
    parser.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    args = parser.parse_args(argv)
    if args.url and (urlparse(args.url).hostname or "") not in LOOPBACK:
        parser.error(
            f"--url must be on loopback ({', '.join(sorted(LOOPBACK))}): this tool only loads local servers")
    if args.clients < 1 or args.seconds <= 0 or args.max_requests < 1:
        parser.error("--clients and --max-requests must be >= 1 and --seconds > 0")
    if args.batching_comparison and not args.model:
        parser.error("--batching-comparison starts its own servers: give --model, not --url")
    return args


async def run(args: argparse.Namespace, url: str, clients: int | None = None) -> tuple[list[Outcome], float]:
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        known = await client.get("/v1/accounts")
        known.raise_for_status()
    accounts = known.json()["accounts"] or ["load.test"]
    mix = Requests(accounts, jpeg(args.photo_size), args.posted_at, args.photo_share, args.bad_share)
    outcomes: list[Outcome] = []
    budget = [args.max_requests]
    started = time.monotonic()
    deadline = started + args.seconds
    clients = [client_loop(i, url, mix, deadline, budget, outcomes, timeout=args.timeout, headers=headers,
                           seed=args.seed, honour_retry_after=not args.ignore_retry_after)
               for i in range(clients or args.clients)]
    # Every request ends by its timeout, so this bound is never reached unless the event loop itself stalls.
    await asyncio.wait_for(asyncio.gather(*clients), timeout=args.seconds + args.timeout + 30)
    return outcomes, time.monotonic() - started


def drafts_per_second(outcomes: list[Outcome], elapsed: float) -> dict[str, Any]:
    """Valid drafts scored (200) per second, with their latency."""
    scored = [o.seconds for o in outcomes if o.kind.startswith("valid:") and o.status == 200]
    return {"drafts_per_s": round(len(scored) / elapsed, 2), **percentiles(scored),
            "other_answers": len(outcomes) - len(scored)}


def batching_comparison(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Sequential vs concurrent clients against serve.py with batching on and off, in one run."""
    result: dict[str, Any] = {}
    for label, batch_size in (("batching_on", args.batch_size), ("batching_off", 1)):
        log = Path(tempfile.mkdtemp(prefix="load-test-")) / "serve.log"
        server, url = start_server(args, log, env, batch_size=batch_size)
        try:
            phases = {}
            for clients in (1, args.clients):
                outcomes, elapsed = asyncio.run(run(args, url, clients))
                phases[f"{clients}_clients"] = drafts_per_second(outcomes, elapsed)
            ready = httpx.get(f"{url}/ready", timeout=10).json()
        finally:
            stop_serve(server)
        one, many = phases["1_clients"]["drafts_per_s"], phases[f"{args.clients}_clients"]["drafts_per_s"]
        result[label] = {"batch_size": batch_size, **phases,
                         "ratio_concurrent_to_sequential": round(many / one, 2) if one else None,
                         "server_batching": ready.get("batching"),
                         "tracebacks_in_log": log.read_text(errors="replace").count("Traceback")}
    result["targets"] = {f"{args.clients}_clients_at_least_2x_one_client_with_batching":
                         (result["batching_on"]["ratio_concurrent_to_sequential"] or 0) >= 2}
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0"}
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv),
        "clients": args.clients, "seconds_asked": args.seconds, "max_requests": args.max_requests,
        "photo": f"{args.photo_size}x{args.photo_size} JPEG", "photo_share": args.photo_share,
        "bad_share": args.bad_share,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_start": os.getloadavg()},
    }
    if args.batching_comparison:
        result.update(batching_comparison(args, env))
        result["machine"]["load_avg_end"] = os.getloadavg()
        print(json.dumps(result, indent=2))
        return 0
    server = None
    log = None
    try:
        if args.model:
            log = Path(tempfile.mkdtemp(prefix="load-test-")) / "serve.log"
            server, url = start_server(args, log, env)
            result["server"] = {"model": args.model, "max_concurrent": args.max_concurrent,
                                "max_queue": args.max_queue,
                                "log": str(log)}
        else:
            url = args.url
            result["server"] = {"url": url}
        outcomes, elapsed = asyncio.run(run(args, url))
        if server is not None:
            result["server"]["health_after"] = httpx.get(f"{url}/health", timeout=10).status_code
    finally:
        if server is not None:
            stop_serve(server)
    result.update(summarise(outcomes, elapsed))
    if log is not None:
        text = log.read_text(errors="replace")
        result["server"]["tracebacks_in_log"] = text.count("Traceback")
    result["machine"]["load_avg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
