"""Killing `python serve.py` (SIGKILL) while outcomes are being posted loses no recorded outcome."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from serving_helpers import ServeProcess

from engage.outcomes import OutcomeStore, ScoreRecord


@pytest.mark.slow
def test_sigkill_mid_write_loses_no_acknowledged_outcome(trained, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'outcomes.db'}"
    store = OutcomeStore(url)
    ids = store.record_scores([ScoreRecord(account="a", caption=f"draft {i}", model_version="engage/1",
                                           embedder="e",
                                           prediction={"likes": {"expected": 10.0, "low": 5.0, "high": 20.0}})
                               for i in range(2000)])
    acknowledged: list[str] = []
    lock = threading.Lock()

    with ServeProcess(trained[1], tmp_path / "serve.log", "--outcomes", url) as server:
        def post(chunk: list[str]) -> None:
            with httpx.Client(timeout=10) as client:
                for score_id in chunk:
                    try:
                        response = client.post(f"{server.url}/v1/outcomes", json={
                            "score_id": score_id, "post_id": f"P-{score_id}",
                            "posted_at": "2030-01-02T09:00:00Z",
                            "age_hours": 24, "likes": 7, "comments": 1})
                    except httpx.TransportError:
                        return  # the server is gone
                    if response.status_code == 201:
                        with lock:
                            acknowledged.append(score_id)

        threads = [threading.Thread(target=post, args=(ids[k::6],)) for k in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.signal(signal.SIGKILL)  # mid-stream: six clients have requests in flight
        for thread in threads:
            thread.join(timeout=30)
        server.process.wait(timeout=30)

    assert 150 <= len(acknowledged) < 2000, "the kill must land while outcomes are still being written"
    after = OutcomeStore(url)
    with after.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    frame = after.outcomes_frame()
    assert set(acknowledged) <= set(frame["score_id"])  # every 201 answer is on disk
    # Nothing half-written: each linked post has its outcome (link and counts are one transaction).
    assert after.count("published") == after.count("outcomes") == len(frame)
    assert (frame["likes"] == 7).all() and (frame["comments"] == 1).all()
    assert datetime.now(UTC) > frame["recorded_at"].max()


@pytest.mark.slow
def test_the_accuracy_run_logs_a_drift_report_against_the_models_training_posts(
    trained, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from engage.model.bundle import EngageModel
    from engage.model.draft import Draft
    from engage.outcomes.__main__ import log_accuracy_run
    from engage.scoring.scorer import Scorer
    from engage.serving.scoring import score_and_record

    model = Scorer(EngageModel.load(trained[1]))
    store = OutcomeStore(f"sqlite:///{tmp_path / 'o.db'}")
    account = str(model.context_posts["account"].iloc[0])
    for i in range(25):  # hashtag-stuffed drafts at 3 am: two columns far from the training posts
        score_and_record(model, Draft(account=account, caption="stuffed " + "#tag " * 25 + str(i),
                                      posted_at=f"2030-01-{1 + i:02d}T03:00:00Z"), store)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    figures = log_accuracy_run(store, account=None, age_hours=None, model=str(trained[1]),
                               tracking_uri=tracking,
                               experiment="engage-outcomes")
    client = MlflowClient(tracking)
    run = client.get_run(figures["run_id"])
    assert run.data.metrics["scored"] == 25.0 and run.data.metrics["published"] == 0.0
    report = client.download_artifacts(run.info.run_id, "drift/report.json")
    import json

    drifted = json.loads(Path(report).read_text())["drifted"]
    assert "hashtags" in drifted and "hour_utc" in drifted
    assert run.data.metrics["drifted_columns"] == float(len(drifted))
