"""Serve engage over HTTP: score drafts, compare drafts, and the draft-studio page.

    python serve.py                                   # models:/engage@champion from sqlite:///mlflow.db
    python serve.py --model models/engage             # a bundle exported by train.py --export
    python serve.py --port 8080 --max-concurrent 4    # then open http://127.0.0.1:8080/

The service itself (endpoints, limits, reload) lives in engage/serving/; this script only parses the
command line. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import os
import sys

# A server's OpenMP threads sleep as soon as a call is done (OMP_WAIT_POLICY=PASSIVE, no spinning): between
# requests, and next to the concurrent requests' own threads, spinning threads take the CPU the next call
# needs (docs/performance.md, "Serving latency"). Set before engage, LightGBM or torch is imported; an
# explicit OMP_WAIT_POLICY wins. GOMP_SPINCOUNT=0 is what PASSIVE means, and overrides a spin count inherited
# from a training process (engage/__init__.py sets one for training).
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["GOMP_SPINCOUNT"] = "0"

from engage.serving.options import ADMIN_TOKEN_ENV, API_KEY_ENV, DEFAULT_MODEL, KEY_FILE_ENV, ServeOptions
from engage.zones import check_time_zone

DEFAULT_FILE = "outcomes.db"


def _zone(text: str) -> str:
    try:
        return check_time_zone(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} {e}") from None


def _account_zone(text: str) -> tuple[str, str]:
    account, sep, zone = text.rpartition("=")
    if not sep or not account.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} must look like ACCOUNT=ZONE, e.g. anna.bakes=Europe/Berlin")
    return account.strip(), _zone(zone.strip())


def _outcomes_url(args: argparse.Namespace) -> str | None:
    if args.outcomes is None:
        from engage.outcomes.store import default_url

        return default_url(args.model, args.tracking_uri)
    return None if args.outcomes.strip().lower() in ("off", "none", "") else args.outcomes


def parse_args(argv: list[str] | None = None) -> ServeOptions:
    defaults = ServeOptions()
    parser = argparse.ArgumentParser(
        description="Serve the engage model over HTTP: POST "
        "/v1/score and /v1/compare, the draft studio at /, "
        "the API reference at /docs, /health and /ready for orchestration.",
        epilog=f"Environment: {API_KEY_ENV} requires that key (an "
        "admin key: every account) in the X-API-Key header of "
        f"/v1/* requests; {KEY_FILE_ENV} is the default of "
        f"--key-file; {ADMIN_TOKEN_ENV} enables POST /admin/reload "
        "(Authorization: Bearer <token>). SIGHUP also reloads "
        "the model (e.g. after a new champion is registered). "
        "Listening beyond loopback (e.g. --host 0.0.0.0) needs "
        "an API key or --insecure-no-auth; see docs/security.md.",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"MLflow model URI or exported bundle directory (default: {DEFAULT_MODEL})")
    parser.add_argument("--tracking-uri", default=defaults.tracking_uri,
                        help=f"MLflow tracking store for models:/ URIs (default: {defaults.tracking_uri})")
    parser.add_argument("--host", default=defaults.host,
                        help=f"address to listen on (default: {defaults.host})")
    parser.add_argument("--port", type=int, default=defaults.port, help=f"port (default: {defaults.port})")
    parser.add_argument("--key-file", default=defaults.key_file,
        help="YAML file of API keys: admin keys (every account) and keys scoped to the accounts they may "
                        f"score, see and compare (default: ${KEY_FILE_ENV}; format in docs/security.md)")
    parser.add_argument("--insecure-no-auth", action="store_true",
        help="listen beyond loopback without any API key (refused otherwise): anyone who can reach the "
                        "port can list every account and score drafts for it; logged as a warning")
    parser.add_argument("--allowed-host", action="append", default=list(defaults.allowed_hosts),
                        metavar="NAME",
        help="a Host name the server answers to besides localhost/127.0.0.1/::1 (repeatable; '*' turns "
                        "the check off). Bound to loopback, other Host headers are refused (DNS rebinding)")
    parser.add_argument("--max-concurrent", type=int, default=defaults.max_concurrent,
                        help=f"drafts scored at the same time (default: {defaults.max_concurrent})")
    parser.add_argument("--max-queue", type=int, default=defaults.max_queue,
                        help="scoring requests that may wait for a free slot; more are answered 503 with "
                        f"Retry-After (default: {defaults.max_queue})")
    parser.add_argument("--retry-after", type=int, default=defaults.retry_after_s,
        help=f"seconds a busy answer asks clients to wait (default: {defaults.retry_after_s})")
    parser.add_argument("--read-timeout", type=float, default=defaults.read_timeout_s,
        help="seconds a client may take to send its request headers, and may pause while sending a "
                        f"body, before it is answered 408 and closed (default: {defaults.read_timeout_s:g})")
    parser.add_argument("--body-timeout", type=float, default=defaults.body_timeout_s,
        help=f"seconds a whole request body may take to arrive (default: {defaults.body_timeout_s:g})")
    parser.add_argument("--keep-alive", type=float, default=defaults.keep_alive_s,
        help=f"seconds an idle keep-alive connection stays open (default: {defaults.keep_alive_s:g})")
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections,
        help="open connections; a new one beyond them is answered 503 with Retry-After and closed "
                        f"(default: {defaults.max_connections})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
        help="most photos and captions of concurrent drafts embedded in one forward pass; 1 turns "
                        f"batching off (default: {defaults.batch_size})")
    parser.add_argument("--batch-wait-ms", type=float, default=defaults.batch_wait_ms,
        help="how long a batch waits for more drafts; it never waits while no other draft is being "
                        f"scored (default: {defaults.batch_wait_ms})")
    parser.add_argument("--vector-cache", type=int, default=defaults.vector_cache_items,
        help="photos and captions whose vectors are kept in memory, so a history sent with every "
                        f"draft is embedded once; 0 turns it off (default: {defaults.vector_cache_items})")
    parser.add_argument("--outcomes", default=None, metavar="URL",
        help="where scores and the outcomes of published drafts are recorded: any SQLAlchemy URL "
                        "(sqlite:///outcomes.db, postgresql+psycopg://user@host/engage), or 'off'. Default: "
        f"{DEFAULT_FILE} beside a SQLite tracking store for a registry model, or in the working "
                        "directory when serving an exported bundle")
    parser.add_argument("--outcomes-photos", action="store_true",
        help="also keep the scored drafts' photos in the outcome store (default: only their hashes, "
                        "enough to match a later dump)")
    parser.add_argument("--time-zone", default=defaults.time_zone, type=_zone,
        help="IANA time zone (e.g. Europe/Berlin) the best hour is given in, for accounts without "
                        f"their own and requests that name none (default: {defaults.time_zone})")
    parser.add_argument("--account-time-zone", action="append", default=[], metavar="ACCOUNT=ZONE",
        type=_account_zone, help="an account's own IANA time zone, e.g. anna.bakes=Europe/Berlin "
                        "(repeat for several accounts); a request's time_zone field wins over it")
    parser.add_argument("--log-level", default=defaults.log_level,
                        choices=["critical", "error", "warning", "info", "debug"], help="(default: info)")
    args = parser.parse_args(argv)
    if args.max_concurrent < 1 or args.max_queue < 0 or args.retry_after < 0:
        parser.error("--max-concurrent must be >= 1, --max-queue and --retry-after >= 0")
    if min(args.read_timeout, args.body_timeout, args.keep_alive) <= 0 or args.max_connections < 1:
        parser.error("--read-timeout, --body-timeout and --keep-alive must be > 0, --max-connections >= 1")
    if args.batch_size < 1 or args.batch_wait_ms < 0 or args.vector_cache < 0:
        parser.error("--batch-size must be >= 1, --batch-wait-ms and --vector-cache >= 0")
    return ServeOptions(model=args.model, tracking_uri=args.tracking_uri, host=args.host, port=args.port,
                        max_concurrent=args.max_concurrent, max_queue=args.max_queue,
                        retry_after_s=args.retry_after, read_timeout_s=args.read_timeout,
                        body_timeout_s=args.body_timeout, keep_alive_s=args.keep_alive,
                        max_connections=args.max_connections, batch_size=args.batch_size,
                        batch_wait_ms=args.batch_wait_ms, vector_cache_items=args.vector_cache,
        log_level=args.log_level, key_file=args.key_file, insecure_no_auth=args.insecure_no_auth,
                        allowed_hosts=tuple(args.allowed_host), time_zone=args.time_zone,
                        account_time_zones=dict(args.account_time_zone), outcomes=_outcomes_url(args),
                        outcomes_photos=args.outcomes_photos)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    # OMP_WAIT_POLICY=PASSIVE is already set at the top of this script, before torch loads.
    from engage.serving.server import run  # after argument parsing, so --help is instant

    return run(options)


if __name__ == "__main__":
    sys.exit(main())
