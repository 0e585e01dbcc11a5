"""Shared fixtures: one smoke-sized model trained once per test run (real data path, real models).

The README's test command runs the suite on two pytest-xdist workers (`-n 2`, each test file on one worker:
pyproject.toml's `--dist loadfile`): each worker is its own process
with its own session fixtures, so what must exist once per run (the demo posts, the smoke model, the key that
signs it) lives in the run's common temporary root and is made by the first worker to take a file lock (the
pattern pytest-xdist documents); the others read it. Run without xdist, the same fixtures make it in the
session's own temporary root.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import pytest
from filelock import FileLock

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
os.environ.setdefault("ENGAGE_ALLOW_DOWNLOAD", "0")
# The model key that signs what the tests train and export (engage/signing.py): the session's own, never the
# user's ~/.config/engage/model.key; subprocesses (serve.py, train.py) inherit it.
# Under xdist the workers of one run share it (PYTEST_XDIST_TESTRUNUID is the run's id): each signs and
# loads the one smoke bundle. engage makes the key race-free (engage/signing.py links it into place).
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_KEY_DIR = (os.path.join(tempfile.gettempdir(), f"engage-test-key-{_RUN}") if _RUN
            else tempfile.mkdtemp(prefix="engage-test-key-"))
os.makedirs(_KEY_DIR, mode=0o700, exist_ok=True)
os.environ.setdefault("ENGAGE_MODEL_KEY_FILE", os.path.join(_KEY_DIR, "model.key"))

ROOT = Path(__file__).resolve().parents[1]

# The longest files, started first: with `--dist loadfile` a worker takes whole files in collection order,
# so a long file collected last would run alone at the end while the other worker idles.
FIRST = ("tests/distributed/test_ray_engine.py", "tests/reliability/test_crash_safety.py",
         "tests/outcomes/test_retrain_loop.py", "tests/scoring/test_dump_answers.py",
         "tests/embed/test_static.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of FIRST before the others, each file's tests in their own order (a stable sort)."""
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve()
        name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else ""
        return FIRST.index(name) if name in FIRST else len(FIRST)

    items.sort(key=rank)


def _run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary root every worker of this run shares (xdist), else the session's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def smoke_settings(tmp_path_factory: pytest.TempPathFactory):
    """configs/smoke.yaml with the demo data, cache and MLflow store in the run's temporary root; the demo
    posts are generated there once (by the first worker to take the lock)."""
    from engage.config import load_settings
    from engage.training import load_training_posts

    work = _run_root(tmp_path_factory) / "smoke"
    work.mkdir(exist_ok=True)
    settings = load_settings(
        ROOT / "configs" / "smoke.yaml",
        [
            f"data.demo.out_dir={work / 'demo'}",
            f"features.cache_dir={work / 'cache'}",
            f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
            "image.embedder=efficientnet",
        ],
    )
    with FileLock(str(work / "demo.lock")):
        load_training_posts(settings, progress=False)
    return settings


@pytest.fixture(scope="session")
def trained(smoke_settings, tmp_path_factory: pytest.TempPathFactory):
    """(TrainResult, exported bundle directory) of one smoke
    training run, shared by every test that needs a model."""
    from engage.training import TrainResult, train

    root = _run_root(tmp_path_factory)
    export, record = root / "bundle" / "engage", root / "bundle" / "result.json"
    with FileLock(str(root / "bundle.lock")):
        if record.exists():  # another worker trained it
            return TrainResult(**json.loads(record.read_text())), export
        export.parent.mkdir(exist_ok=True)
        result = train(smoke_settings, export_dir=str(export), progress=False)
        record.write_text(json.dumps(dataclasses.asdict(result)))
    return result, export


@pytest.fixture(scope="session")
def draft_table(smoke_settings):
    """A function writing a photo under DIR/photos and returning a drafts table for batch scoring: two
    good drafts (one with the photo as a relative path), a missing photo and an empty account."""
    import pandas as pd

    from engage.training import load_training_posts

    posts = load_training_posts(smoke_settings)

    def make(directory: Path) -> pd.DataFrame:
        photo = Path(posts["image"].dropna().iloc[0])
        (directory / "photos").mkdir(exist_ok=True)
        (directory / "photos" / "draft.jpg").write_bytes(photo.read_bytes())
        account = posts["account"].iloc[0]
        return pd.DataFrame({
            "account": [account, account, account, ""],
            "caption": ["Morning light on the harbour #sea", "New serum, link in bio #ad #skincare", "x",
                        "y"],
            "posted_at": ["2024-06-01T09:00:00Z"] * 4,
            "followers": [5000, 5000, None, 100],
            "image": ["photos/draft.jpg", None, "photos/missing.jpg", None],
        })

    return make
