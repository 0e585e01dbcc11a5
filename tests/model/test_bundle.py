"""The model bundle (engage/model/bundle.py): saved whole,
checksummed, refused when incomplete or tampered."""

from __future__ import annotations

import shutil

import pytest

from engage.errors import ModelError
from engage.model.bundle import EngageModel


def test_incomplete_or_tampered_bundles_are_refused(trained, tmp_path):
    _, export = trained
    missing = shutil.copytree(export, tmp_path / "missing")
    (missing / "context.parquet").unlink()
    with pytest.raises(ModelError, match="incomplete: context.parquet is missing"):
        EngageModel.load(missing)
    tampered = shutil.copytree(export, tmp_path / "tampered")
    with open(tampered / "state.pkl", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(ModelError, match="state.pkl does not match its checksum"):
        EngageModel.load(tampered)
    no_manifest = shutil.copytree(export, tmp_path / "no_manifest")
    (no_manifest / "manifest.json").unlink()
    with pytest.raises(ModelError, match="no manifest.json"):
        EngageModel.load(no_manifest)
