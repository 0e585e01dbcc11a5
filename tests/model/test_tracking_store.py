"""A SQLite tracking store is created whole or not at all, and a broken one is named before any training."""

from __future__ import annotations

import os

import pytest
from mlflow.tracking import MlflowClient

from engage.errors import EngageError
from engage.training import prepare_tracking_store


def test_a_new_store_is_created_complete_under_a_temporary_name_then_renamed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    stale = tmp_path / "runs" / ".mlflow.db.tmp-999999999-abc123"  # left by a run killed mid-creation
    stale.parent.mkdir()
    stale.write_bytes(b"half a schema")
    prepare_tracking_store(uri)
    assert sorted(os.listdir(tmp_path / "runs")) == ["mlflow.db"]
    assert [e.name for e in MlflowClient(tracking_uri=uri).search_experiments()] == ["Default"]


def test_a_store_that_cannot_be_opened_is_an_error_naming_the_file_to_delete(tmp_path):
    broken = tmp_path / "mlflow.db"
    broken.write_bytes(b"not a database" * 100)
    with pytest.raises(EngageError, match=rf"tracking store {broken} cannot be opened.*delete {broken}"):
        prepare_tracking_store(f"sqlite:///{broken}")


def test_other_tracking_uris_are_left_to_mlflow(tmp_path):
    prepare_tracking_store("http://127.0.0.1:1")  # no connection attempted
    assert list(tmp_path.iterdir()) == []
