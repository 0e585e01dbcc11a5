"""The engage model bundle: everything needed to score a draft, saved and loaded as one directory.

A bundle holds the fitted feature pipeline (with its embedder ids), one model per target, the context that
features of a new draft need (each account's last posts and every account's posts of the data's last days,
with their vectors), the norms behind the flags, and its metadata (config, metrics, data fingerprint).
Training saves it, logs it to MLflow as one pyfunc model and can export it to `models/`; `serve.py` loads
exactly that object, so feature code exists once. It is what was trained and saved; what serves it is
`engage.scoring.scorer.Scorer`, which owns the serving state (prepared context, vector cache, batcher).

Directory layout, written atomically (`engage.files.staged_write`: a temporary sibling renamed into place) with
`manifest.json` last, listing every file's SHA-256: a bundle whose manifest is missing or does not match
its files is refused at load with a `ModelError`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from engage.config import Settings, settings_to_yaml
from engage.data.schema import validate_posts
from engage.errors import ModelError
from engage.features.pipeline import FeaturePipeline, PostVectors
from engage.files import file_sha256, staged_write

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
FILES = ("bundle.joblib", "context.parquet", "context_vectors.npz", "settings.yaml")


def select_context(posts: pd.DataFrame, n_last: int, window_hours: float) -> np.ndarray:
    """Positions a bundle keeps: each account's last `n_last` posts, plus all posts of the data's last days."""
    order = posts.sort_values("posted_at", kind="stable")
    last = order.groupby("account", sort=False).tail(n_last).index
    recent = posts.index[posts["posted_at"] >= posts["posted_at"].max() - pd.Timedelta(hours=2 * window_hours)]
    return np.sort(np.union1d(last.to_numpy(), recent.to_numpy()))


class EngageModel:
    """A trained engage pipeline: what was fitted and saved (`engage.scoring.scorer.Scorer` scores with it)."""

    def __init__(
        self,
        settings: Settings,
        pipeline: FeaturePipeline,
        models: dict[str, Any],
        context_posts: pd.DataFrame,
        context_vectors: PostVectors,
        norms: dict[str, float],
        info: dict[str, Any],
        feed_photos: dict[str, list[str]] | None = None,
    ):
        self.settings = settings
        self.pipeline = pipeline
        self.models = models
        self.context_posts = context_posts.reset_index(drop=True)
        self.context_vectors = context_vectors
        self.norms = norms
        self.info = info
        self.feed_photos = feed_photos or {}  # account -> its last photos as thumbnails, newest first (feed preview)

    # -- identity --------------------------------------------------------------------------------
    @property
    def embedder(self) -> str:
        return self.pipeline.image_embedder_id_

    @property
    def version(self) -> str:
        return str(self.info.get("version") or self.info.get("run_id") or "unregistered")

    @property
    def risk_label(self) -> str:
        """What the authenticity-risk model learned from (or why there is none), for every answer."""
        if "authenticity_risk" not in self.models:
            why = (self.info.get("skipped_targets") or {}).get("authenticity_risk", "it was not trained")
            return f"no risk model: {why}"
        return str((self.info.get("labels") or {}).get("authenticity_risk") or "unknown (the model does not say)")

    def check_embedder(self) -> None:
        """Build the embedders now; raises EmbedderMismatchError if they differ from training."""
        _ = self.pipeline.image_embedder, self.pipeline.text_embedder

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        with staged_write(directory, directory=True) as staged:
            staging = staged.path
            joblib.dump(
                {"format": BUNDLE_FORMAT, "pipeline": self.pipeline, "models": self.models, "norms": self.norms, "info": self.info,
                 "feed_photos": self.feed_photos},
                staging / "bundle.joblib",
            )
            context = self.context_posts.copy()
            context.attrs = {}
            context["image"] = None  # vectors are stored; paths on the training machine mean nothing elsewhere
            context.to_parquet(staging / "context.parquet", index=False)
            np.savez(staging / "context_vectors.npz", image=self.context_vectors.image,
                     caption=self.context_vectors.caption, quality=self.context_vectors.quality)
            (staging / "settings.yaml").write_text(settings_to_yaml(self.settings), encoding="utf-8")
            manifest = {"format": BUNDLE_FORMAT, "files": {name: file_sha256(staging / name) for name in FILES},
                        "embedder": self.embedder, "created": datetime.now(UTC).isoformat()}
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> EngageModel:
        directory = Path(directory)
        manifest_path = directory / "manifest.json"
        if not manifest_path.is_file():
            raise ModelError(f"{directory} is not a complete engage bundle (no manifest.json); retrain or re-export it")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = manifest["files"]
        except (ValueError, KeyError) as e:
            raise ModelError(f"{manifest_path} is corrupt; retrain or re-export the model") from e
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ModelError(f"{directory} has bundle format {manifest.get('format')}, this engage reads {BUNDLE_FORMAT}")
        for name in FILES:
            path = directory / name
            if not path.is_file():
                raise ModelError(f"{directory} is incomplete: {name} is missing; retrain or re-export the model")
            if file_sha256(path) != files.get(name):
                raise ModelError(f"{directory} is corrupt: {name} does not match its checksum in manifest.json")
        state = joblib.load(directory / "bundle.joblib")
        vectors = np.load(directory / "context_vectors.npz")
        from engage.config import load_settings

        settings = load_settings(directory / "settings.yaml")
        context = validate_posts(pd.read_parquet(directory / "context.parquet"), file=directory / "context.parquet",
                                 hidden_likes=True)  # history from a dump may hold posts whose likes were hidden
        return cls(settings, state["pipeline"], state["models"], context,
                   PostVectors(vectors["image"], vectors["caption"], vectors["quality"]), state["norms"], state["info"],
                   state.get("feed_photos"))  # bundles from before the feed preview have none

    @classmethod
    def from_uri(cls, uri: str, tracking_uri: str | None = None) -> EngageModel:
        """A bundle directory, or an MLflow model URI such as models:/engage@champion."""
        if Path(uri).is_dir():
            return cls.load(uri)
        import mlflow

        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts/bundle")
        except Exception as e:  # MLflow raises several unrelated types for a missing model or alias
            raise ModelError(
                f"cannot load model {uri!r} from tracking store {mlflow.get_tracking_uri()}: {e}. "
                "Train one with `python train.py`, or pass --model models/<exported dir>"
            ) from e
        model = cls.load(local)
        if uri.startswith("models:/"):
            model.info["registered_uri"] = uri
            version = _registered_version(uri)
            if version is not None:
                model.info["version"] = version
        return model


def _registered_version(uri: str) -> str | None:
    """'name/version' for models:/name@alias or models:/name/version; None for other model URIs."""
    from mlflow.tracking import MlflowClient

    path = uri[len("models:/"):].strip("/")
    try:
        if "@" in path:
            name, alias = path.split("@", 1)
            return f"{name}/{MlflowClient().get_model_version_by_alias(name, alias).version}"
        name, _, version = path.rpartition("/")
        if name and version.isdigit():
            return f"{name}/{version}"
    except Exception as e:  # the version is a label; a registry hiccup must not stop the model loading
        log.warning("could not resolve the registered version of %s: %s", uri, e)
    return None
