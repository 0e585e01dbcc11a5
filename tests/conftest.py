"""Shared fixtures: one smoke-sized model trained once per test session (real data path, real models)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
os.environ.setdefault("ENGAGE_ALLOW_DOWNLOAD", "0")
# The model key that signs what the tests train and export (engage/signing.py): the session's own, never the
# user's ~/.config/engage/model.key; subprocesses (serve.py, train.py) inherit it.
os.environ.setdefault("ENGAGE_MODEL_KEY_FILE",
                      os.path.join(tempfile.mkdtemp(prefix="engage-test-key-"), "model.key"))

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_settings(tmp_path_factory: pytest.TempPathFactory):
    """configs/smoke.yaml with the demo data, cache and MLflow store in a per-session temporary directory."""
    from engage.config import load_settings

    work = tmp_path_factory.mktemp("smoke")
    return load_settings(
        ROOT / "configs" / "smoke.yaml",
        [
            f"data.demo.out_dir={work / 'demo'}",
            f"features.cache_dir={work / 'cache'}",
            f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
            "image.embedder=efficientnet",
        ],
    )


@pytest.fixture(scope="session")
def trained(smoke_settings, tmp_path_factory: pytest.TempPathFactory):
    """(TrainResult, exported bundle directory) of one smoke
    training run, shared by every test that needs a model."""
    from engage.training import train

    export = tmp_path_factory.mktemp("bundle") / "engage"
    result = train(smoke_settings, export_dir=str(export), progress=False)
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
