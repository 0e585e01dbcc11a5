"""`python serve.py` as a command: its help, and refusing to start without a model to serve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from serving_helpers import ROOT


def serve(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "serve.py"), *args], cwd=cwd, capture_output=True,
                          text=True,
        timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0"})


def test_help_explains_the_model_limits_and_environment() -> None:
    done = serve("--help")
    assert done.returncode == 0
    for words in ("--model", "models:/engage@champion", "--max-concurrent", "--max-queue", "Retry-After",
                  "ENGAGE_API_KEY", "ENGAGE_ADMIN_TOKEN", "SIGHUP", "--read-timeout", "--body-timeout",
                  "--keep-alive",
                  "--max-connections", "408"):
        assert words in done.stdout


def test_missing_registered_model_exits_non_zero_saying_how_to_get_one(tmp_path: Path) -> None:
    done = serve("--port", "0", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", cwd=tmp_path)
    assert done.returncode == 2
    assert "error: cannot serve model models:/engage@champion" in done.stderr
    assert "Train one with `python train.py`, or pass --model" in done.stderr


def test_bundle_directory_without_manifest_exits_non_zero(tmp_path: Path) -> None:
    # its default outcome store lands in cwd
    done = serve("--port", "0", "--model", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{tmp_path} is not a complete engage bundle (no manifest.json)" in done.stderr


def test_invalid_limits_are_refused_by_the_command_line() -> None:
    done = serve("--max-concurrent", "0")
    assert done.returncode == 2 and "--max-concurrent must be >= 1" in done.stderr


def test_invalid_timeouts_and_connection_limit_are_refused_by_the_command_line() -> None:
    for args in (["--read-timeout", "0"], ["--body-timeout", "-1"], ["--max-connections", "0"]):
        done = serve(*args)
        assert done.returncode == 2 and ("--read-timeout, --body-timeout and "
                                         "--keep-alive must be > 0") in done.stderr
