"""Outcomes imported from a later dump, matched by post id or by photo and caption; the accuracy run in
MLflow; the drift report."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engage.outcomes import OutcomeRecord, OutcomeStore, ScoreRecord
from engage.outcomes.__main__ import log_accuracy_run, main
from engage.outcomes.drift import drift_report, input_columns

SCORED = datetime(2030, 1, 1, 8, tzinfo=UTC)


def _blocks(seed: int, size: int = 320, quality: int = 92) -> bytes:
    cells = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(cells, "RGB").resize((size, size),
                                         Image.Resampling.BICUBIC).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _record(store: OutcomeStore, caption: str, photo: bytes | None, likes: float = 100.0) -> str:
    [score_id] = store.record_scores([ScoreRecord(
        account="anna.bakes", caption=caption, model_version="engage/3", embedder="e", photo=photo,
        prediction={"likes": {"expected": likes, "low": likes / 2, "high": likes * 1.5}})])
    return score_id


def test_import_matches_by_post_id_and_by_photo_and_caption(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import engage.outcomes.store as store_module

    monkeypatch.setattr(store_module, "datetime",
                        type("Frozen", (datetime,), {"now": staticmethod(lambda tz=None: SCORED)}))
    url = f"sqlite:///{tmp_path / 'o.db'}"
    store = OutcomeStore(url)
    known = _record(store, "linked before", None)
    store.record_outcome(OutcomeRecord(score_id=known, post_id="K1",
                                       posted_at=datetime(2030, 1, 2, tzinfo=UTC),
                                       age_hours=24, counts={"likes": 50}))
    with_photo = _record(store, "Sourdough   crumb shot", _blocks(1))
    caption_only = _record(store, "no photo here", None)
    _record(store, "a different photo", _blocks(2))
    monkeypatch.undo()
    (tmp_path / "img").mkdir()
    # Instagram's recompressed copy
    (tmp_path / "img" / "a.jpg").write_bytes(_blocks(1, size=256, quality=60))
    (tmp_path / "img" / "b.jpg").write_bytes(_blocks(9))
    table = pd.DataFrame({
        "account": ["anna.bakes"] * 5,
        "post_id": ["K1", "A1", "B1", "C1", "D1"],
        "posted_at": ["2030-01-02T00:00:00Z", "2030-01-03T09:00:00Z", "2030-01-03T10:00:00Z",
                      "2030-01-03T11:00:00Z",
                      "2030-01-03T12:00:00Z"],
        "caption": ["linked before", "Sourdough crumb shot", "no photo here", "a different photo",
                    "never scored"],
        "likes": [80, 140, 30, 10, 5], "comments": [3, 9, 1, 0, 0],
        "image": ["", "img/a.jpg", "", "img/b.jpg", ""],
    })
    table.to_csv(tmp_path / "later.csv", index=False)
    from engage.outcomes.importer import import_outcomes

    monkeypatch.chdir(tmp_path)
    report = import_outcomes(store, "table", tmp_path / "later.csv", read_at=datetime(2030, 1, 9, tzinfo=UTC))
    assert (report.posts, report.by_post_id, report.by_photo_and_caption, report.unmatched) == (5, 1, 2, 2)
    frame = store.outcomes_frame().set_index(["post_id", "age_hours"])
    assert frame.loc[("K1", 168.0), "likes"] == 80  # 2 Jan to 9 Jan: a second record of a known post
    assert frame.loc[("A1", 135.0), "score_id"] == with_photo and frame.loc[("A1", 135.0), "likes"] == 140
    assert frame.loc[("B1", 134.0), "score_id"] == caption_only
    assert "C1" not in frame.index.get_level_values(0)  # the caption matches but the photo is another one
    from engage.outcomes.accuracy import accuracy

    shown = {p["post_id"]: (p["expected"], p["actual"]) for p in accuracy(store, "anna.bakes")["points"]}
    assert shown == {"K1": (100.0, 80.0), "A1": (100.0, 140.0), "B1": (100.0, 30.0)}  # imported ones appear
    again = import_outcomes(store, "table", tmp_path / "later.csv", read_at=datetime(2030, 1, 9, tzinfo=UTC))
    assert again.recorded == 0 and sorted(again.already) == ["A1", "B1", "K1"]
    assert main(["--outcomes", url, "import", str(tmp_path / "later.csv"), "--source", "table",
                 "--age-hours", "720"]) == 0
    assert store.count("outcomes") == 7


def test_the_accuracy_run_logs_its_figures_and_plot_to_mlflow(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    store = OutcomeStore(f"sqlite:///{tmp_path / 'o.db'}")
    for i, actual in enumerate((120, 60, 200)):
        score_id = _record(store, f"draft {i}", None)
        store.record_outcome(OutcomeRecord(score_id=score_id, post_id=f"P{i}", age_hours=24,
                                           counts={"likes": actual},
                                           posted_at=datetime(2030, 1, 2 + i, tzinfo=UTC)))
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    figures = log_accuracy_run(store, account=None, age_hours=None, model=None, tracking_uri=tracking,
                               experiment="engage-outcomes")
    run = MlflowClient(tracking).get_run(figures["run_id"])
    assert run.data.metrics["live_likes_mae"] == pytest.approx((20 + 40 + 100) / 3)
    assert run.data.metrics["live_likes_coverage"] == pytest.approx(2 / 3)  # 200 is above 150
    # trailing means 120, 90
    assert run.data.metrics["live_likes_baseline_mae"] == pytest.approx((60 + 110) / 2)
    assert run.data.metrics["published"] == 3.0 and run.data.tags["kind"] == "outcome_accuracy"
    artifacts = {a.path for a in MlflowClient(tracking).list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/predicted_vs_actual.png"}


def test_drift_report_flags_a_shifted_column_and_leaves_a_steady_one() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int, hashtags: float, hour: float) -> pd.DataFrame:
        captions = pd.Series(
            ["word " * int(rng.integers(5, 30)) + "#tag " * int(rng.poisson(hashtags)) for _ in range(n)])
        times = pd.Series(pd.to_datetime("2030-01-01",
                                         utc=True) + pd.to_timedelta(rng.normal(hour, 2, n) % 24, unit="h"))
        return input_columns(captions, times, pd.Series(rng.integers(1000, 5000, n)), pd.Series([False] * n),
                             pd.Series([True] * n))

    report = drift_report(frame(400, 3, 12), frame(200, 15, 12))
    by_name = {c["column"]: c for c in report["columns"]}
    assert by_name["hashtags"]["drifted"] is True and by_name["hashtags"]["p_value"] < 1e-10
    assert by_name["hour_utc"]["drifted"] is False
    assert "hashtags" in report["drifted"] and "hour_utc" not in report["drifted"]
    assert by_name["sponsored"]["drifted"] is False
    small = drift_report(frame(400, 3, 12), frame(5, 15, 12))
    assert all(c["drifted"] is None for c in small["columns"])


def test_an_instaloader_dump_is_imported_from_the_command_line(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import engage.outcomes.store as store_module

    dump = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "instaloader" / "anna.bakes"
    posted = Image.open(dump / "2023-05-01_18-30-00_UTC.jpg")
    draft_photo = io.BytesIO()
    posted.convert("RGB").resize((posted.width * 2,
                                  posted.height * 2)).save(draft_photo, format="JPEG", quality=95)
    monkeypatch.setattr(store_module, "datetime", type("Frozen", (datetime, ), {
        "now": staticmethod(lambda tz=None: datetime(2023, 4, 30, tzinfo=UTC))}))
    url = f"sqlite:///{tmp_path / 'o.db'}"
    store = OutcomeStore(url)
    score_id = _record(store, "Sourdough, day 3 #baking", draft_photo.getvalue())  # the draft, before upload
    _record(store, "Lemon tart", None)  # posted with a photo: a caption alone does not match it
    monkeypatch.undo()
    assert main(["--outcomes", url, "import", str(dump), "--source", "instaloader", "--age-hours",
                 "720"]) == 0
    frame = OutcomeStore(url).outcomes_frame()
    assert frame[["score_id", "post_id", "likes", "age_hours", "source"]].values.tolist() == [
        [score_id, "CrAnna00001", 120, 720.0, "import:instaloader"]]
