"""The MLflow tracking store of a run: where a SQLite store's artifacts go, and a new store created whole."""

from __future__ import annotations

from pathlib import Path

from engage.errors import EngageError
from engage.files import staged_write


def artifact_location(tracking_uri: str) -> str | None:
    """For a SQLite store, artifacts go beside the database file (MLflow's default is ./mlruns in whatever
    directory train.py runs from, which mixes the artifacts of different stores)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return (Path(tracking_uri[len(prefix):]).resolve().parent / "mlruns").as_uri()


def prepare_tracking_store(tracking_uri: str) -> None:
    """Make sure a SQLite tracking store opens, creating a new one atomically.

    MLflow creates a store by applying some 50 schema migrations one by one; a run killed half-way leaves
    a store that no later run (nor `mlflow db upgrade`) can open. So a new store is built under a temporary
    name beside the target and renamed into place once complete, before any training work. An existing
    store that cannot be opened is an error that names the file to delete.
    """
    from mlflow.tracking import MlflowClient

    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return
    path = Path(tracking_uri[len(prefix):])
    if path.exists():
        try:
            MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)
        except Exception as e:  # SQLAlchemy/Alembic raise many types for a damaged schema
            raise EngageError(
                f"the MLflow tracking store {path} cannot be opened "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]}). If a run was "
                "killed while the store was being created, delete "
                f"{path} and run again, or point tracking.uri elsewhere"
            ) from e
        return
    with staged_write(path, directory=False) as staging:
        MlflowClient(tracking_uri=f"{prefix}{staging.path}").search_experiments(max_results=1)
