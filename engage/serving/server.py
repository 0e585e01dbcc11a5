"""Run the service under uvicorn; a model that cannot be served ends the process with a clear message.

    run(ServeOptions(model="models/engage", port=8000))  ->  exit code (0 after a normal shutdown)
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn

from engage.errors import ConfigError, EngageError
from engage.serving.access import KeyRing, check_exposure
from engage.serving.app import create_app
from engage.serving.connections import guarded_protocol
from engage.serving.limits import MAX_HEADER_BYTES
from engage.serving.options import ServeOptions

#: Exit code when the model cannot be loaded or the server refuses to start (an embedder mismatch, no API key
#: while listening beyond loopback).
EXIT_MODEL_FAILED = 2


def uvicorn_config(app: Any, options: ServeOptions, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for `app`: address, logging, and the connection limits of `options`."""
    settings: dict[str, Any] = dict(
        host=options.host, port=options.port, log_level=options.log_level, timeout_graceful_shutdown=30,
        http=guarded_protocol(options.read_timeout_s, options.max_connections, options.retry_after_s),
        timeout_keep_alive=options.keep_alive_s, h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    return uvicorn.Config(app, **{**settings, **overrides})


def run(options: ServeOptions) -> int:
    """Serve until interrupted; returns the process exit code."""
    logging.basicConfig(level=options.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    failures: list[str] = []
    server: uvicorn.Server | None = None

    def stop(message: str) -> None:
        failures.append(message)
        if server is not None:
            server.should_exit = True  # read by uvicorn's main loop; safe to set from the loading thread

    try:  # before anything loads: a server that would be open to the network without a key does not start
        check_exposure(options.host, KeyRing.load(options.api_key, options.key_file),
                       options.insecure_no_auth)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_MODEL_FAILED
    try:
        app = create_app(options, on_startup_failure=stop)
    except EngageError as e:  # e.g. an outcome store that cannot be opened
        print(f"error: {e}", file=sys.stderr)
        return EXIT_MODEL_FAILED
    server = uvicorn.Server(uvicorn_config(app, options))
    server.run()
    if failures:
        print(f"error: {failures[0]}", file=sys.stderr)
        return EXIT_MODEL_FAILED
    return 0 if server.started else 1
