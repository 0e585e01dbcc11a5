"""The outcome store itself: migrations, concurrent writers in several processes, PostgreSQL, photo hashes."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from serving_helpers import ROOT, photo

from engage.outcomes import OutcomeError, OutcomeRecord, OutcomeStore, ScoreRecord, default_url
from engage.outcomes.store import dhash_distance, photo_dhash

WHEN = datetime(2030, 1, 2, 9, tzinfo=UTC)


def _record(caption: str = "plain", **extra: object) -> ScoreRecord:
    return ScoreRecord(account="anna.bakes", caption=caption, model_version="engage/3", embedder="e",
                       prediction={"likes": {"expected": 100.0, "low": 50.0, "high": 150.0}}, **extra)


def _roundtrip(store: OutcomeStore) -> None:
    [score_id] = store.record_scores([_record("nul \x00 inside",
                                              features={"likes_baseline": 4.0, "hour_utc": None})])
    assert store.score(score_id)["caption"] == "nul \ufffd inside"
    store.record_outcome(OutcomeRecord(score_id=score_id, post_id="C1", posted_at=WHEN, age_hours=24,
                                       counts={"likes": 130, "saves": 7}))
    store.record_outcome(OutcomeRecord(post_id="C1", posted_at=WHEN, age_hours=168, counts={"likes": 150}))
    frame = store.outcomes_frame("anna.bakes")
    assert frame["likes"].tolist() == [130, 150] and frame["age_hours"].tolist() == [24.0, 168.0]
    assert frame["saves"].iloc[0] == 7 and frame["posted_at"].iloc[0] == WHEN
    assert frame["features"].iloc[0] == {"likes_baseline": 4.0, "hour_utc": None}
    with pytest.raises(OutcomeError, match="already linked") as caught:
        [other] = store.record_scores([_record("other")])
        store.record_outcome(OutcomeRecord(score_id=other, post_id="C1", posted_at=WHEN, age_hours=24,
                                           counts={"likes": 1}))
    assert caught.value.field == "post_id" and caught.value.status == 409


def test_sqlite_store_migrates_on_open_and_keeps_records_across_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    store = OutcomeStore(url)
    assert store.revision() == "0001"
    _roundtrip(store)
    again = OutcomeStore(url)  # migrating an up-to-date store changes nothing
    assert again.revision() == "0001" and again.count("outcomes") == 2 and again.count("scores") == 2


def test_postgresql_works_with_the_same_code(postgres_url: str) -> None:
    from sqlalchemy import text

    store = OutcomeStore(postgres_url)
    with store.engine.begin() as connection:  # a clean slate in a reused database
        connection.execute(text("DROP TABLE IF EXISTS outcomes, published, scores, alembic_version CASCADE"))
    store.upgrade()
    assert store.revision() == "0001"
    _roundtrip(store)


WRITER = """
import sys
from datetime import UTC, datetime
from engage.outcomes import OutcomeRecord, OutcomeStore, ScoreRecord
store = OutcomeStore(sys.argv[1])
worker = int(sys.argv[2])
for i in range(30):
    likes = {"likes": {"expected": 1.0, "low": 0.0, "high": 2.0}}
    [sid] = store.record_scores([ScoreRecord(account="a", caption=f"{worker}-{i}", model_version="m",
                                             embedder="e", prediction=likes)])
    store.record_outcome(OutcomeRecord(score_id=sid, post_id=f"{worker}-{i}",
                                       posted_at=datetime.now(UTC), age_hours=24, counts={"likes": i}))
"""


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    OutcomeStore(url)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(w)], env=env, stderr=subprocess.PIPE)
               for w in range(4)]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    store = OutcomeStore(url)
    assert store.count("scores") == 120 and store.count("outcomes") == 120
    assert sorted(store.outcomes_frame()["post_id"]) == sorted(f"{w}-{i}" for w in range(4)
                                                               for i in range(30))


def test_photos_are_kept_as_hashes_unless_asked(tmp_path: Path) -> None:
    jpeg = photo(200)
    hashes_only = OutcomeStore(f"sqlite:///{tmp_path / 'a.db'}")
    [sid] = hashes_only.record_scores([_record(photo=jpeg)])
    row = hashes_only.score(sid)
    assert row["photo"] is None and len(row["photo_sha256"]) == 64 and len(row["photo_dhash"]) == 16
    keeping = OutcomeStore(f"sqlite:///{tmp_path / 'b.db'}", keep_photos=True)
    [sid] = keeping.record_scores([_record(photo=jpeg)])
    assert keeping.score(sid)["photo"] == jpeg


def _blocks(seed: int, size: int = 400, quality: int = 92) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    cells = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(cells, "RGB").resize((size, size),
                                         Image.Resampling.BICUBIC).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def test_the_perceptual_hash_survives_recompression_and_tells_photos_apart() -> None:
    original = _blocks(1)
    recompressed = _blocks(1, size=320, quality=60)  # what Instagram does to an upload, roughly
    assert dhash_distance(photo_dhash(original), photo_dhash(recompressed)) <= 4
    assert min(dhash_distance(photo_dhash(original), photo_dhash(_blocks(seed))) for seed in range(2, 8)) > 12
    assert photo_dhash(b"not a photo") is None


def test_the_default_store_sits_beside_the_tracking_store_or_in_the_working_directory(tmp_path: Path) -> None:
    assert default_url("models:/engage@champion", f"sqlite:///{tmp_path}/t/mlflow.db") == \
        f"sqlite:///{tmp_path}/t/outcomes.db"
    assert default_url("models/engage", f"sqlite:///{tmp_path}/t/mlflow.db", cwd=tmp_path) == \
        f"sqlite:///{tmp_path}/outcomes.db"
    assert default_url("models:/engage@champion", "http://mlflow:5000",
                       cwd=tmp_path) == f"sqlite:///{tmp_path}/outcomes.db"
