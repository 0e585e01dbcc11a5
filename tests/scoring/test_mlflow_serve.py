"""docs/serving.md's `mlflow models serve` example, run as written against the session's smoke model."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # needs the session's trained smoke model and starts MLflow's server


def _documented_block() -> str:
    text = (ROOT / "docs" / "serving.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- run as written by tests/model/test_mlflow_serve.py[^>]*-->\n```bash\n(.*?)```", text, re.S
    )
    assert match, "docs/serving.md lost its mlflow models serve example"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _strict_json(text: str):
    def refuse(constant: str):
        raise AssertionError(f"the answer holds a bare {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_documented_mlflow_models_serve_call_answers_json_with_null_for_missing_targets(
    trained, smoke_settings, tmp_path
):
    script = _documented_block().replace("5001", str(_free_port()))
    store = Path(smoke_settings.tracking.uri.removeprefix("sqlite:///"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0"}
    # Files, not pipes: the documented server runs on in the background and would hold a pipe open.
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as err:
        process = subprocess.Popen(
            ["bash", "-c", f"set -e\n{script}"],
            cwd=store.parent,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            process.wait(timeout=240)
        finally:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:  # nothing of the script is left running
                pass
    assert process.returncode == 0, (tmp_path / "err").read_text()[-2000:]
    answer = _strict_json((tmp_path / "out").read_text().strip().splitlines()[-1])
    rows = answer["predictions"]
    assert len(rows) == 2  # the second row leaves posted_at, followers, sponsored and image out
    for row in rows:
        assert row["likes_expected"] > 0 and row["likes_low"] <= row["likes_expected"] <= row["likes_high"]
        assert row["reach_expected"] is None  # configs/smoke.yaml does not train reach: null, not NaN
        assert 0 <= row["authenticity_risk"] <= 1
        assert "unknown_account" in row["flags"].split(",")
