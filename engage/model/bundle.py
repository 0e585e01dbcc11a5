"""The engage model bundle: everything needed to score a draft, saved and loaded as one directory.

A bundle holds the fitted feature pipeline (with its embedder ids), one model per target, the context that
features of a new draft need (each account's last posts and every account's posts of the data's last days,
with their vectors), the norms behind the flags, and its metadata (config, metrics, data fingerprint).
Training saves it, logs it to MLflow as one pyfunc model and can export it to `models/`; `serve.py` loads
exactly that object, so feature code exists once. It is what was trained and saved; what serves it is
`engage.scoring.scorer.Scorer`, which owns the serving state (prepared context, vector cache, batcher).

Directory layout, written atomically (`engage.files.staged_write`: a temporary sibling renamed into place)
with `manifest.json` last, listing every file's SHA-256: a bundle whose manifest is missing or does not match
its files is refused at load with a `ModelError`.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engage.config import Settings, settings_from_yaml, settings_to_yaml
from engage.data.schema import validate_posts
from engage.errors import ModelError
from engage.features.pipeline import FeaturePipeline
from engage.features.vectors import PostVectors, repeats_one_row
from engage.files import staged_write
from engage.signing import load_signed, model_key, read_manifest, require_key, save_signed

log = logging.getLogger(__name__)

#: 2: signed (engage/signing.py), boosters as text, arrays as npz; 1: one unsigned joblib pickle (refused;
#: `python -m engage.model.trust` converts one the operator trusts).
BUNDLE_FORMAT = 2
LEGACY_FORMAT = 1


def select_context(posts: pd.DataFrame, n_last: int, window_hours: float) -> np.ndarray:
    """Positions a bundle keeps: each account's last `n_last`
    posts, plus all posts of the data's last days."""
    order = posts.sort_values("posted_at", kind="stable")
    last = order.groupby("account", sort=False).tail(n_last).index
    recent = posts.index[
        posts["posted_at"] >= posts["posted_at"].max() - pd.Timedelta(hours=2 * window_hours)]
    return np.sort(np.union1d(last.to_numpy(), recent.to_numpy()))


class EngageModel:
    """A trained engage pipeline: what was fitted and saved
    (`engage.scoring.scorer.Scorer` scores with it)."""

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
        # account -> its last photos as thumbnails, newest first (feed preview)
        self.feed_photos = feed_photos or {}

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
        return str((self.info.get("labels") or {}).get("authenticity_risk")
                   or "unknown (the model does not say)")

    def check_embedder(self) -> None:
        """Build the embedders now; raises EmbedderMismatchError if they differ from training."""
        _ = self.pipeline.image_embedder, self.pipeline.text_embedder

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the bundle, signed with this machine's model key (engage/signing.py; made on first use)."""
        directory = Path(directory)
        key = model_key(create=True)
        assert key is not None  # create=True makes one when there is none
        context = self.context_posts.copy()
        context.attrs = {}
        context["image"] = None  # vectors are stored; paths on the training machine mean nothing elsewhere
        parquet, vectors = io.BytesIO(), io.BytesIO()
        context.to_parquet(parquet, index=False)
        image = self.context_vectors.image
        # A context without photos is one NaN row seen n times: stored as that row and n (5 GB of NaN at a
        # million posts otherwise); `_from_parts` restores the view.
        repeated: dict[str, Any] = {"image": image[:1],
                                    "image_rows": np.array(len(image))} if repeats_one_row(image) else {
            "image": image}
        np.savez(vectors, **repeated, caption=self.context_vectors.caption,
                 quality=self.context_vectors.quality)
        # the buffers themselves, not copies of them (the vectors are a GB at a million posts)
        files: dict[str, bytes | memoryview] = {
            "context.parquet": parquet.getbuffer(), "context_vectors.npz": vectors.getbuffer(),
            "settings.yaml": settings_to_yaml(self.settings).encode("utf-8"),
            "feed.json": json.dumps(self.feed_photos).encode("utf-8")}
        state = {"pipeline": self.pipeline, "models": self.models, "norms": self.norms, "info": self.info}
        with staged_write(directory, directory=True) as staged:
            # Boosters as text, arrays as npz, the rest one
            # pickle; manifest.json (written last) signs them all.
            save_signed(staged.path, state, key, files=files,
                        meta={"format": BUNDLE_FORMAT, "embedder": self.embedder,
                              "created": datetime.now(UTC).isoformat()})
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> EngageModel:
        """The bundle in `directory`, only if its manifest is signed with this machine's model key and every
        file matches it (each file is read once: what is verified is what is loaded)."""
        directory = Path(directory)
        fix = (
            "re-export it on the machine that trained it (python train.py --export) and copy that machine's "
               "model key here, or retrain (docs/security.md)")
        if not (directory / "manifest.json").is_file():
            raise ModelError(
                f"{directory} is not a complete engage bundle (no manifest.json); retrain or re-export it")
        manifest = read_manifest(directory, fix)
        if manifest.get("format") == LEGACY_FORMAT:
            raise ModelError(
                f"{directory} was saved before engage signed its models (bundle format {LEGACY_FORMAT}): its "
                "bundle.joblib is a pickle engage cannot prove it "
                "made, so it is not loaded. If you trust it (you "
                "trained it), convert it once with `python -m "
                f"engage.model.trust {directory}`; otherwise retrain")
        if manifest.get("format") != BUNDLE_FORMAT:
            raise ModelError(
                f"{directory} has bundle format {manifest.get('format')}, this engage reads {BUNDLE_FORMAT}")
        state, files, _ = load_signed(directory, require_key(f"model bundle {directory}"),
                                      what=str(directory),
                                      fix=fix, manifest=manifest)
        return cls._from_parts(directory, state, files)

    @classmethod
    def _from_parts(cls, directory: Path, state: dict[str, Any], files: dict[str, bytes]) -> EngageModel:
        try:
            with np.load(io.BytesIO(files["context_vectors.npz"]), allow_pickle=False) as vectors:
                image = vectors["image"]
                if "image_rows" in vectors.files:  # a photo-less context: one NaN row seen image_rows times
                    rows = int(vectors["image_rows"])
                    if rows != len(vectors["caption"]) or image.ndim != 2 or len(image) != 1:
                        raise ModelError(
                            f"{directory / 'context_vectors.npz'}: image_rows {rows} does not match "
                            f"its {len(vectors['caption'])} caption rows; retrain or re-export the model")
                    image = np.broadcast_to(image, (rows, image.shape[1]))
                context_vectors = PostVectors(image, vectors["caption"], vectors["quality"])
            settings = settings_from_yaml(files["settings.yaml"].decode("utf-8"),
                                          source=directory / "settings.yaml")
            context = pd.read_parquet(io.BytesIO(files["context.parquet"]))
            feed = json.loads(files["feed.json"]) if "feed.json" in files else state.get("feed_photos")
        except KeyError as e:
            raise ModelError(
                f"{directory} is incomplete: {e.args[0]} is missing; retrain or re-export the model") from e
        context = validate_posts(context, file=directory / "context.parquet",
                                 # history from a dump may hold posts whose likes were hidden
                                 hidden_likes=True)
        return cls(settings, state["pipeline"], state["models"], context, context_vectors, state["norms"],
                   state["info"],
                   feed)

    @classmethod
    def from_uri(cls, uri: str, tracking_uri: str | None = None) -> EngageModel:
        """A bundle directory, or an MLflow model URI such as models:/engage@champion.

        A URI with a scheme (`models:`, `runs:`, `s3:`, ...) is always the registry's or store's, never a
        local folder of that name: a folder `models:/engage@champion` planted in the working directory must
        not shadow the champion. (A local folder whose name starts like a scheme is reached as
        ./models:/...)"""
        if not is_model_uri(uri):
            if Path(uri).is_dir():
                return cls.load(uri)
            raise ModelError(
                f"model {uri!r} is neither a bundle directory nor a model URI (models:/NAME@ALIAS, "
                "runs:/RUN/PATH); train one with `python train.py` or pass an exported bundle folder")
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


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def is_model_uri(uri: str) -> bool:
    """Whether `uri` names a model by URI (a scheme of two or more letters: models:, runs:, s3:, file:...),
    not a plain local path (a Windows drive letter such as C: is one letter)."""
    return bool(_SCHEME.match(str(uri)))


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
