"""Run the service under uvicorn; a model that cannot be served ends the process with a clear message.

    run(ServeOptions(model="models/engage", port=8000))  ->  exit code (0 after a normal shutdown)
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from engage.serving.app import create_app
from engage.serving.options import ServeOptions

#: Exit code when the model cannot be loaded or refuses to start (e.g. an embedder mismatch).
EXIT_MODEL_FAILED = 2


def run(options: ServeOptions) -> int:
    """Serve until interrupted; returns the process exit code."""
    logging.basicConfig(level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    failures: list[str] = []
    server: uvicorn.Server | None = None

    def stop(message: str) -> None:
        failures.append(message)
        if server is not None:
            server.should_exit = True  # read by uvicorn's main loop; safe to set from the loading thread

    app = create_app(options, on_startup_failure=stop)
    server = uvicorn.Server(uvicorn.Config(app, host=options.host, port=options.port, log_level=options.log_level,
                                           timeout_graceful_shutdown=30))
    server.run()
    if failures:
        print(f"error: {failures[0]}", file=sys.stderr)
        return EXIT_MODEL_FAILED
    return 0 if server.started else 1
