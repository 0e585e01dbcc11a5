"""Fuzz the HTTP API from its own OpenAPI schema with schemathesis and print what every check found (JSON).

    python benchmarks/fuzz_api.py --model models/engage                # starts serve.py with an API key
    python benchmarks/fuzz_api.py --url http://127.0.0.1:8000 --api-key KEY -n 200

For every operation in /openapi.json, `-n` requests are generated from the schema (schema-valid ones) and
`-n` more that break it (negative mode), sent in order (derandomised: the same requests every run), and
every answer goes through every schemathesis check: server errors, status codes, content types, response
headers and bodies against the schema, and whether valid data is accepted and invalid data refused. Unlike
the test (tests/reliability/test_fuzz_api.py, which fails on a 5xx or an undocumented answer), this records
every finding with one example and carries on. Only loopback URLs are accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from serve_process import start_serve  # benchmarks/serve_process.py (the script's own folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def start_server(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0", "ENGAGE_API_KEY": args.api_key}
    return start_serve(["--model", args.model, "--tracking-uri", args.tracking_uri], log, env)


def fuzz_operation(operation: Any, mode: Any, headers: dict[str, str], examples: int,
                   timeout: float) -> dict[str, Any]:
    """`examples` generated requests for one operation in one generation mode, every check on each answer."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.core.failures import FailureGroup

    statuses: Counter[str] = Counter()
    findings: dict[str, dict[str, Any]] = {}
    seconds: list[float] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def send(case: Any) -> None:
        started = time.perf_counter()
        try:
            response = case.call(headers=headers, timeout=timeout)
        except Exception as e:  # no answer at all: the worst finding
            entry = findings.setdefault(f"no answer: {type(e).__name__}",
                                        {"count": 0, "example": str(e)[:300]})
            entry["count"] += 1
            return
        seconds.append(time.perf_counter() - started)
        statuses[str(response.status_code)] += 1
        try:
            case.validate_response(response, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                entry = findings.setdefault(failure.title, {
                    "count": 0, "example": " ".join(failure.message.split())[:300],
                    "status": response.status_code, "curl": case.as_curl_command(headers=headers)[:600]})
                entry["count"] += 1
        except AssertionError as failure:
            entry = findings.setdefault(str(failure)[:80], {"count": 0, "status": response.status_code})
            entry["count"] += 1

    try:
        send()
    except Unsatisfiable:  # e.g. negative mode for an operation without parameters or body: nothing to break
        return {"requests": 0, "note": "no request of this mode can be generated"}
    return {
        "requests": sum(statuses.values()), "statuses": dict(sorted(statuses.items())),
        "server_errors": sum(n for s, n in statuses.items() if s.startswith("5")),
        "slowest_s": round(max(seconds), 2) if seconds else None, "findings": findings,
    }


def fuzz(url: str, api_key: str | None, examples: int, timeout: float) -> dict[str, Any]:
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"X-API-Key": api_key} if api_key else {}
    report: dict[str, Any] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            report[f"{operation.label} [{mode.value}]"] = fuzz_operation(
                operation, mode, headers, examples, timeout)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server on loopback")
    where.add_argument("--model", help="start serve.py on this MLflow model URI or bundle directory")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db",
                        help="with --model: MLflow tracking store")
    parser.add_argument("--api-key", default=os.environ.get("ENGAGE_API_KEY") or "fuzz-key",
                        help="X-API-Key to send (and, with --model, the server's key)")
    parser.add_argument("-n", "--examples", type=int, default=100,
                        help="examples per operation and mode (100)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per request (best_hour is slow)")
    args = parser.parse_args(argv)
    if args.url and (urlparse(args.url).hostname or "") not in LOOPBACK:
        parser.error("--url must be on loopback")
    started = time.monotonic()
    server = None
    try:
        if args.model:
            server, url = start_server(args, Path(tempfile.mkdtemp(prefix="fuzz-api-")) / "serve.log")
        else:
            url = args.url
        report = fuzz(url, args.api_key, args.examples, args.timeout)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    import schemathesis

    summary = {
        "command": " ".join([Path(sys.executable).name,
                             *(sys.argv if argv is None else ["fuzz_api.py", *argv])]),
        "schemathesis": schemathesis.SCHEMATHESIS_VERSION, "examples_per_operation_and_mode": args.examples,
        "seconds": round(time.monotonic() - started, 1),
        "requests": sum(r["requests"] for r in report.values()),
        "server_errors": sum(r.get("server_errors", 0) for r in report.values()),
        "findings": sorted({title for r in report.values() for title in r.get("findings", {})}),
        "operations": report,
        "load_avg": os.getloadavg(),
    }
    print(json.dumps(summary, indent=2))
    return 1 if summary["server_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
