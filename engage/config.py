"""The typed configuration tree of engage.

One `Settings` object describes a whole run: where the posts come from, which embedders build the
features, how the models are trained and where runs are tracked. YAML files in `configs/` set any subset
of keys (the rest keep the defaults below); single keys are overridden on the command line as
`section.key=value`. The resolved tree is logged with every run and stored inside every model bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from engage.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class _Section(BaseModel):
    # A typo in a YAML key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DemoSettings(_Section):
    seed: int = 7  # the simulator is deterministic for a seed
    n_accounts: int = Field(42, ge=2)  # accounts in the simulated population
    posts_per_account: int = Field(60, ge=3)  # mean posts per account over the simulated period
    months: int = Field(12, ge=1)  # length of the simulated period
    image_size: int = Field(320, ge=64)  # side of the generated JPEGs, pixels
    out_dir: str = "data/demo"  # where the simulator writes posts.parquet and images/


class DataSettings(_Section):
    # where posts come from: a name in engage.data.sources.SOURCES (checked when loading)
    source: str = "demo"
    # table file, Instaloader dump, or insights export / Graph API folder (unused for demo)
    path: str | None = None
    # table/insights: the account of a single-account table or export that names none
    account: str | None = None
    # table: the table's column names -> engage's (e.g. {Date:
    # posted_at, Likes: likes}); see engage/data/table.py
    columns: dict[str, str] | None = None
    images_dir: str | None = None  # base for relative image paths in a table
    # how a table's or export's text dates are read when their day/month order is ambiguous (03/04/2024):
    # day-first, month-first, or a strptime format for every cell (%d/%m/%Y %H:%M); None: detected per column
    date_format: str | None = None
    strict: bool = False  # an unreadable file in an Instaloader dump is an error (default: skipped and named)
    # also train on the published drafts recorded in the outcome store (engage/outcomes)
    outcomes: bool = False
    outcomes_url: str | None = None  # the outcome store; None: outcomes.db beside a SQLite tracking store
    demo: DemoSettings = DemoSettings()


class ImageSettings(_Section):
    # a name in engage.embed.registry.IMAGE_EMBEDDERS; auto: CLIP if its weights are local, else EfficientNet
    embedder: str = "auto"
    clip_model: str = "ViT-B-32"  # open_clip architecture name
    clip_pretrained: str | None = "laion2b_s34b_b79k"  # open_clip pretrained tag
    clip_checkpoint: str | None = None  # local checkpoint file; wins over the pretrained tag
    device: str = "auto"  # auto: cuda when present, else cpu
    batch_size: int = Field(32, ge=1)  # images per forward pass
    num_workers: int = Field(2, ge=0)  # decode worker processes on the CPU path
    # auto: ONNX Runtime for EfficientNet on the CPU (2.6-14x faster, same vectors), PyTorch for CLIP and CUDA
    runtime: Literal["auto", "torch", "onnxruntime"] = "auto"


class TextSettings(_Section):
    # auto: CLIP text tower with CLIP images; else static from `static_from_posts` training posts, MiniLM
    # below. static: model2vec token vectors distilled once from MiniLM (~4,000 captions/s against ~50;
    # docs/results.md)
    embedder: str = "auto"  # a name in engage.embed.registry.TEXT_EMBEDDERS (minilm, static, clip), or auto
    # auto: tables of this many posts or more embed captions with static
    static_from_posts: int = Field(10_000, ge=0)
    # auto: ONNX Runtime for MiniLM on the CPU (see image.runtime)
    runtime: Literal["auto", "torch", "onnxruntime"] = "auto"


class FeatureSettings(_Section):
    # N: the account's last N posts form its feed centroid, habits and baseline
    history_posts: int = Field(24, ge=1)
    duplicate_image_cosine: float = Field(0.95, gt=0, le=1)  # near-duplicate image threshold
    duplicate_caption_cosine: float = Field(0.9, gt=0, le=1)  # near-duplicate caption threshold
    # duplicates: other accounts' posts up to this many hours earlier
    duplicate_window_hours: float = Field(24.0, gt=0)
    embedding_components: int = Field(8, ge=0)  # PCA components of each embedding given to the models
    cache_dir: str = "data/cache"  # embedding and image-quality cache


class LightGBMSettings(_Section):
    n_estimators: int = Field(800, ge=1)  # upper bound; early stopping picks the number
    learning_rate: float = Field(0.03, gt=0)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(20, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    subsample_freq: int = Field(1, ge=0)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)
    early_stopping_rounds: int = Field(50, ge=1)
    n_jobs: int = 2


class TrainSettings(_Section):
    test_fraction: float = Field(0.2, gt=0, lt=1)  # each account's latest share of posts held out
    # share of training posts (latest, before test) for early stopping
    valid_fraction: float = Field(0.15, gt=0, lt=1)
    interval: float = Field(0.8, gt=0, lt=1)  # coverage of the likes/comments prediction interval
    # The count models' interval width: "adaptive" (each post's conformal margin scaled by a model of how far
    # the level misses posts like it: normalized split-conformal) or "constant" (one margin for every post).
    interval_scale: Literal["constant", "adaptive"] = "adaptive"
    seed: int = 7  # seeds the embeddings' PCA and LightGBM (the demo simulator has its own data.demo.seed)
    lightgbm: LightGBMSettings = LightGBMSettings()
    export_dir: str | None = None  # also export the bundle to this directory (e.g. models/engage)
    # targets to train (engage/model/targets.py); None: every one the data has
    targets: list[str] | None = None
    # A model trained with data.outcomes=true becomes champion only when its MAE of log(1+likes) on the latest
    # posts neither it nor the champion trained on is at least this much lower (relative); else challenger.
    outcome_min_improvement: float = Field(0.02, ge=0, lt=1)
    # Count models: the account's level, cross-fitted over this many folds of accounts (out-of-fold
    # residuals), then the draft's uplift on those residuals, learned by regression on account-demeaned
    # residuals or by LightGBM's lambdarank with accounts as groups (docs/results.md measures both on real
    # data).
    level_folds: int = Field(5, ge=2)
    level_folds_by: Literal["account", "post"] = "account"  # hold out whole accounts, or posts at random
    # The level is fitted on every training and validation post with a fixed number of trees (no early
    # stopping: the latest posts before the test period matter most, and cross-fitting gives the honest
    # residuals).
    level: LightGBMSettings = LightGBMSettings(n_estimators=600, num_leaves=7, min_child_samples=50)
    # Where the level's trees start: "none" (log1p from scratch)
    # or "trailing" (the account's trailing mean log1p).
    level_start: Literal["none", "trailing"] = "trailing"
    uplift_objective: Literal["regression", "lambdarank"] = "regression"
    # Feature families left out of every model (engage.features.pipeline.FEATURE_FAMILIES): ablations.
    drop_features: list[str] = []

    @field_validator("level", mode="before")
    @classmethod
    def _level_keeps_its_defaults(cls, value: Any) -> Any:
        """A partial `level` (a config file's, or an override such as `train.level.n_jobs=1`) changes only the
        keys it names: the rest keep the level's own defaults (600 trees of 7 leaves), not LightGBMSettings'
        generic ones."""
        if isinstance(value, dict):
            default = cls.model_fields["level"].default
            return {**default.model_dump(), **value}
        return value


class TrackingSettings(_Section):
    uri: str = "sqlite:///mlflow.db"  # MLflow tracking store, relative to where train.py runs
    experiment: str = "engage"
    registered_model: str = "engage"


class RuntimeSettings(_Section):
    # ray: embeddings, features and LightGBM on Ray (pip install -e ".[ray]")
    engine: Literal["local", "ray"] = "local"
    # None: a local Ray started for the run (or $RAY_ADDRESS); "auto" or host:port joins a cluster
    ray_address: str | None = None
    # CPUs of the local Ray started for the run (None: all of the machine's)
    ray_num_cpus: int | None = Field(None, ge=1)
    ray_workers: int = Field(2, ge=1)  # embedder actors, LightGBM workers and scoring actors
    # CPUs each actor or worker reserves (fractions share a core)
    ray_cpus_per_worker: float = Field(1.0, gt=0)
    # Ray Train checkpoint storage; a cluster needs shared storage (s3://, NFS); None: a temp dir
    ray_storage: str | None = None


class Settings(_Section):
    data: DataSettings = DataSettings()
    image: ImageSettings = ImageSettings()
    text: TextSettings = TextSettings()
    features: FeatureSettings = FeatureSettings()
    train: TrainSettings = TrainSettings()
    tracking: TrackingSettings = TrackingSettings()
    runtime: RuntimeSettings = RuntimeSettings()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{dotted}': '{key}' is a value, not a section")
        node = child
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split `section.key=value`; the value is read as YAML (so 15 is an int, null is None)."""
    if "=" not in text:
        raise ConfigError(
            f"override '{text}' must look like section.key=value, e.g. train.lightgbm.num_leaves=31")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{text}': the value is not valid YAML") from e
    return key.strip(), value


def load_settings(path: str | Path | None = None, overrides: list[str] | None = None) -> Settings:
    """Defaults, then the YAML file at `path` (any subset of keys), then `section.key=value` overrides."""
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; see configs/ for examples")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {path} must hold a mapping of sections, got {type(loaded).__name__}")
        tree = loaded or {}
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(tree, key, value)
    try:
        return Settings.model_validate(tree)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        source = f"config file {path}" if path is not None else "configuration"
        raise ConfigError(f"{source} is invalid: {problems}") from e


def settings_to_yaml(settings: Settings) -> str:
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False)


def settings_from_yaml(text: str, *, source: object) -> Settings:
    """Settings from YAML text already read (a model bundle's verified bytes); errors name `source`."""
    try:
        tree = yaml.safe_load(text) or {}
        if not isinstance(tree, dict):
            raise ConfigError(f"{source} must hold a mapping of sections, got {type(tree).__name__}")
        return Settings.model_validate(tree)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {e}") from e
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"{source} is invalid: {problems}") from e


def flat_params(settings: Settings) -> dict[str, Any]:
    """The resolved tree as `section.key -> value`, for MLflow params."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            flat[prefix] = node

    walk("", settings.model_dump(mode="json"))
    return flat
