"""The engage model bundle: everything needed to score a draft, saved as one directory.

A bundle holds the fitted feature pipeline (with its embedder ids), one model per target, the context that
features of a new draft need (each account's last posts and every account's posts of the data's last days,
with their vectors), the norms behind the flags, and its metadata (config, metrics, data fingerprint).
Training saves it, logs it to MLflow as one pyfunc model and can export it to `models/`; `serve.py` loads
exactly that object, so feature code exists once.

Directory layout, written atomically (a temporary sibling directory renamed into place) with
`manifest.json` last, listing every file's SHA-256: a bundle whose manifest is missing or does not match
its files is refused at load with a `ModelError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from engage.config import Settings, settings_to_yaml
from engage.data.schema import validate_posts
from engage.errors import DataError, DraftError, ModelError
from engage.features.pipeline import FeaturePipeline, PostVectors
from engage.model.draft import Draft
from engage.model.explain import describe_feature, draft_flags, top_factors
from engage.model.targets import TARGETS

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
FILES = ("bundle.joblib", "context.parquet", "context_vectors.npz", "settings.yaml")
DRAFT_ID = "__draft__"
#: Largest image accepted for scoring, in pixels (a 40-megapixel photo; bigger is treated as a bomb).
MAX_PIXELS = 40_000_000


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def select_context(posts: pd.DataFrame, n_last: int, window_hours: float) -> np.ndarray:
    """Positions a bundle keeps: each account's last `n_last` posts, plus all posts of the data's last days."""
    order = posts.sort_values("posted_at", kind="stable")
    last = order.groupby("account", sort=False).tail(n_last).index
    recent = posts.index[posts["posted_at"] >= posts["posted_at"].max() - pd.Timedelta(hours=2 * window_hours)]
    return np.sort(np.union1d(last.to_numpy(), recent.to_numpy()))


class EngageModel:
    """A trained engage pipeline that scores drafts."""

    def __init__(
        self,
        settings: Settings,
        pipeline: FeaturePipeline,
        models: dict[str, Any],
        context_posts: pd.DataFrame,
        context_vectors: PostVectors,
        norms: dict[str, float],
        info: dict[str, Any],
    ):
        self.settings = settings
        self.pipeline = pipeline
        self.models = models
        self.context_posts = context_posts.reset_index(drop=True)
        self.context_vectors = context_vectors
        self.norms = norms
        self.info = info

    # -- identity --------------------------------------------------------------------------------
    @property
    def embedder(self) -> str:
        return self.pipeline.image_embedder_id_

    @property
    def version(self) -> str:
        return str(self.info.get("version") or self.info.get("run_id") or "unregistered")

    def check_embedder(self) -> None:
        """Build the embedders now; raises EmbedderMismatchError if they differ from training."""
        _ = self.pipeline.image_embedder, self.pipeline.text_embedder

    # -- persistence -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            joblib.dump(
                {"format": BUNDLE_FORMAT, "pipeline": self.pipeline, "models": self.models, "norms": self.norms, "info": self.info},
                staging / "bundle.joblib",
            )
            context = self.context_posts.copy()
            context.attrs = {}
            context["image"] = None  # vectors are stored; paths on the training machine mean nothing elsewhere
            context.to_parquet(staging / "context.parquet", index=False)
            np.savez(staging / "context_vectors.npz", image=self.context_vectors.image,
                     caption=self.context_vectors.caption, quality=self.context_vectors.quality)
            (staging / "settings.yaml").write_text(settings_to_yaml(self.settings), encoding="utf-8")
            manifest = {"format": BUNDLE_FORMAT, "files": {name: _sha256(staging / name) for name in FILES},
                        "embedder": self.embedder, "created": datetime.now(UTC).isoformat()}
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
                os.replace(directory, old)
                os.replace(staging, directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
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
            if _sha256(path) != files.get(name):
                raise ModelError(f"{directory} is corrupt: {name} does not match its checksum in manifest.json")
        state = joblib.load(directory / "bundle.joblib")
        vectors = np.load(directory / "context_vectors.npz")
        from engage.config import load_settings

        settings = load_settings(directory / "settings.yaml")
        context = validate_posts(pd.read_parquet(directory / "context.parquet"), file=directory / "context.parquet")
        return cls(settings, state["pipeline"], state["models"], context,
                   PostVectors(vectors["image"], vectors["caption"], vectors["quality"]), state["norms"], state["info"])

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

    # -- scoring ---------------------------------------------------------------------------------
    def _draft_context(self, draft: Draft, when: datetime) -> tuple[pd.DataFrame, PostVectors, bool]:
        """The posts (and vectors) a draft's features are computed against, with the draft as the last row."""
        t = pd.Timestamp(when)
        ctx = self.context_posts
        window = pd.Timedelta(hours=self.settings.features.duplicate_window_hours)
        others = np.flatnonzero(((ctx["account"] != draft.account) & (ctx["posted_at"] >= t - window) & (ctx["posted_at"] <= t)).to_numpy())
        parts_posts = [ctx.iloc[others]]
        parts_vectors = [self.context_vectors.take(others)]
        if draft.history:
            own_posts, own_vectors = self._history_context(draft, t)
        else:
            own = np.flatnonzero(((ctx["account"] == draft.account) & (ctx["posted_at"] < t)).to_numpy())
            own_posts, own_vectors = ctx.iloc[own], self.context_vectors.take(own)
        known = len(own_posts) > 0
        parts_posts.append(own_posts)
        parts_vectors.append(own_vectors)
        row = pd.DataFrame({
            "account": [draft.account], "post_id": [DRAFT_ID], "posted_at": [t], "caption": [draft.caption],
            "likes": [0], "comments": [None], "followers": [draft.followers], "image": [None],
            "is_video": [False], "sponsored": [draft.sponsored],
        })
        parts_posts.append(validate_posts(row, file="<draft>"))
        parts_vectors.append(self.pipeline.embed_draft(draft.image, draft.caption, max_pixels=MAX_PIXELS))
        posts = pd.concat(parts_posts, ignore_index=True)
        return posts, PostVectors.concat(parts_vectors), known

    def _history_context(self, draft: Draft, t: pd.Timestamp) -> tuple[pd.DataFrame, PostVectors]:
        history = sorted((h for h in draft.history or [] if pd.Timestamp(h.posted_at) < t), key=lambda h: h.posted_at)
        history = history[-self.settings.features.history_posts:]  # only the last N shape the features
        rows = pd.DataFrame({
            "account": [draft.account] * len(history), "post_id": [f"__history_{i}" for i in range(len(history))],
            "posted_at": [pd.Timestamp(h.posted_at) for h in history], "caption": [h.caption for h in history],
            "likes": [h.likes for h in history], "comments": [h.comments for h in history],
            "followers": [draft.followers] * len(history),
        })
        vectors = []
        for i, h in enumerate(history):
            try:
                vectors.append(self.pipeline.embed_draft(h.image, h.caption, max_pixels=MAX_PIXELS))
            except (DraftError, DataError) as e:
                raise DraftError(e.message, field=f"history[{i}].image") from e
        if not vectors:
            return validate_posts(rows, file="<history>"), _empty_vectors(self.context_vectors)
        return validate_posts(rows, file="<history>"), PostVectors.concat(vectors)

    def features_for(self, draft: Draft) -> tuple[pd.DataFrame, bool]:
        when = draft.posted_at or datetime.now(UTC)
        posts, vectors, known = self._draft_context(draft, when)
        return self.pipeline.transform(posts, vectors, rows=[len(posts) - 1]), known

    def predict_features(self, features: pd.DataFrame) -> dict[str, Any]:
        """Raw predictions for a feature table: log1p expected/low/high per count target, risk probability."""
        out: dict[str, Any] = {}
        for name, model in self.models.items():
            if TARGETS[name].kind == "count":
                out[name] = model.predict_log1p(features)
            else:
                out[name] = model.predict_proba(features)
        return out

    def score(self, draft: Draft, *, n_factors: int = 6) -> dict[str, Any]:
        """The API's answer for one draft: likes and comments with a range, risk, flags and factors."""
        features, known = self.features_for(draft)
        predictions = self.predict_features(features)
        result: dict[str, Any] = {"model_version": self.version, "embedder": self.embedder}
        for name in ("likes", "comments"):
            if name in predictions:
                p = predictions[name]
                result[name] = {k: round(float(np.expm1(max(v[0], 0.0))), 2) for k, v in p.items()}
            else:
                result[name] = None
        result["authenticity_risk"] = float(predictions["authenticity_risk"][0]) if "authenticity_risk" in predictions else None
        result["flags"] = draft_flags(features.iloc[0], self.norms, known_account=known)
        likes_model = self.models.get("likes")
        result["factors"] = top_factors(features, likes_model, n_factors) if likes_model is not None else []
        return result

    def best_hour(self, draft: Draft, *, days: int = 7, start: datetime | None = None) -> dict[str, Any]:
        """The hour in the next `days` days with the highest expected likes for this draft."""
        if "likes" not in self.models:
            raise ModelError("this model has no likes target, so it cannot pick a posting hour")
        start = (start or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        candidates = [pd.Timestamp(start + timedelta(hours=h)) for h in range(days * 24)]
        posts, vectors, _ = self._draft_context(draft.model_copy(update={"posted_at": start}), start)
        features = self.pipeline.transform_at_times(posts, vectors, len(posts) - 1, candidates)
        expected = self.models["likes"].predict_log1p(features)["expected"]
        best = int(np.argmax(expected))
        return {"posted_at": candidates[best].isoformat(), "expected_likes": round(float(np.expm1(expected[best])), 2)}

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Batch scoring for the MLflow pyfunc: one draft per row (account, caption, posted_at, ...)."""
        import base64

        rows = []
        for record in frame.to_dict(orient="records"):
            record = {k: v for k, v in record.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
            if isinstance(record.get("image"), str):
                record["image"] = base64.b64decode(record["image"], validate=True) if record["image"] else None
            scored = self.score(Draft(**record))
            rows.append({
                **{f"{t}_{k}": (scored[t] or {}).get(k, np.nan) for t in ("likes", "comments") for k in ("expected", "low", "high")},
                "authenticity_risk": scored["authenticity_risk"] if scored["authenticity_risk"] is not None else np.nan,
                "flags": ",".join(f["code"] for f in scored["flags"]),
            })
        return pd.DataFrame(rows)

    def describe(self, feature: str) -> str:
        return describe_feature(feature)


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


def _empty_vectors(like: PostVectors) -> PostVectors:
    return PostVectors(
        np.zeros((0, like.image.shape[1]), np.float32),
        np.zeros((0, like.caption.shape[1]), np.float32),
        np.zeros((0, like.quality.shape[1]), np.float32),
    )
