"""The feature pipeline: canonical posts in, the models' feature table out.

Two steps, one code path for training and scoring:

1. `embed(posts)` turns every post's photo and caption into vectors (image embedding, image quality,
   caption embedding), each cached on disk by content hash and model id, so a second build over the same
   posts recomputes nothing.
2. `transform(posts, vectors, rows)` computes the features of the chosen rows: caption hand features,
   image quality, history consistency against the account's earlier posts, same-day duplicates across
   accounts, and a few PCA components of each embedding (the only learned part, fitted by `fit` on
   training rows). Training passes every row; scoring appends the draft to the stored context (the
   account's recent posts and other accounts' recent posts) and passes only the draft's row.

`FeaturePipeline` follows the scikit-learn estimator contract: `__init__` only stores its parameters (the
image, text and feature settings and a seed; never rewritten), `fit` sets every learned attribute
(`image_embedder_id_`, `text_embedder_id_`, the PCAs, `feature_names_`, declared from the feature modules'
column lists), and `transform` refuses to run unfitted with `NotFittedError`. The embedder ids are stored with
every model; a fitted pipeline rebuilds exactly that embedder (the backend 'auto' resolved to) and refuses to
embed with a different one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from engage.config import FeatureSettings, ImageSettings, Settings, TextSettings
from engage.embed.cache import FeatureCache, cached_vectors, text_sha256
from engage.embed.decoding import PHOTO_DECODING, PhotoDecoding
from engage.embed.registry import make_image_embedder, make_text_embedder
from engage.embed.text import image_caption_similarity
from engage.engine import Engine
from engage.errors import EmbedderMismatchError, NotFittedError
from engage.features.caption import CAPTION_COLUMNS, caption_features
from engage.features.duplicates import DUPLICATE_COLUMNS
from engage.features.families import FEATURE_FAMILIES, LEVEL_FAMILIES, family_columns, feature_family  # noqa: F401
from engage.features.history import HISTORY_COLUMNS, AccountTimeline, history_features, posted_at_ns
from engage.features.local_engine import LOCAL
from engage.features.quality import ANALYSIS_SIDE, QUALITY_COLUMNS, QUALITY_VERSION
from engage.features.vectors import PostVectors
from engage.files import file_sha256

log = logging.getLogger(__name__)

#: Largest chunk of new caption vectors computed and cached at once: chunks double from the engine's
#: chunk size while each takes under a second (the static embedder: 65,536 captions in ~15 s; MiniLM stays
#: at the engine's size), so a million captions make some twenty shards, not four thousand.
MAX_CHUNK = 65_536


def _image_keys(paths: list[str | None]) -> list[str | None]:
    keys: list[str | None] = []
    for path in paths:
        if path is None or not Path(path).is_file():
            keys.append(None)
        else:
            keys.append(file_sha256(path))
    return keys


class FeaturePipeline:
    """Builds the feature table. Its parameters are the settings it uses (the image, text and feature
    sections, and the seed of the PCAs); learned state ends in `_` and is set by `fit`. `from_settings` takes
    them from a run's `Settings`."""

    def __init__(self, *, image: ImageSettings | None = None, text: TextSettings | None = None,
                 features: FeatureSettings | None = None, seed: int = 0):
        self.image = image if image is not None else ImageSettings()
        self.text = text if text is not None else TextSettings()
        self.features = features if features is not None else FeatureSettings()
        self.seed = seed
        self._image_embedder: Any = None
        self._text_embedder: Any = None
        self._table_posts: int | None = None  # posts of the table `embed` was given before `fit`

    @classmethod
    def from_settings(cls, settings: Settings) -> FeaturePipeline:
        """The pipeline of a run: its image, text and feature settings, and `train.seed`."""
        return cls(image=settings.image, text=settings.text, features=settings.features,
                   seed=settings.train.seed)

    def get_params(self) -> dict[str, Any]:
        """The parameters, as scikit-learn names them:
        `FeaturePipeline(**p.get_params())` is an unfitted copy."""
        return {"image": self.image, "text": self.text, "features": self.features, "seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Pipelines pickled before the parameters were split held the whole run's `settings`.
        settings = state.pop("settings", None)
        if settings is not None:
            state.update(image=settings.image, text=settings.text, features=settings.features,
                         seed=settings.train.seed)
        self.__dict__.update(state)

    # -- embedders -------------------------------------------------------------------------------
    def _image_settings(self) -> ImageSettings:
        """The image settings to build the embedder from: once fitted, with the backend that 'auto' resolved
        to, so a saved pipeline rebuilds exactly its embedder (and says nothing about fallbacks) wherever it
        loads."""
        fitted = getattr(self, "image_embedder_id_", None)
        backend = fitted.split(":", 1)[0] if fitted else None
        if backend in ("open_clip", "efficientnet") and self.image.embedder == "auto":
            return self.image.model_copy(update={"embedder": backend})
        return self.image

    @property
    def image_embedder(self) -> Any:
        if self._image_embedder is None:
            embedder = make_image_embedder(self._image_settings(), onnx_dir=self.onnx_dir)
            expected = getattr(self, "image_embedder_id_", None)
            if expected is not None and embedder.id != expected:
                raise EmbedderMismatchError(
                    f"this model was trained with image embedder {expected!r} but {embedder.id!r} was built; "
                    "score with the embedder the model was trained "
                    "with (set image.embedder / image.clip_checkpoint "
                    "to match) or retrain"
                )
            self._image_embedder = embedder
        return self._image_embedder

    def _text_settings(self) -> TextSettings:
        """As `_image_settings`: once fitted, 'auto' becomes the text backend it resolved to at training, so a
        model keeps its caption embedder when the default changes."""
        fitted = getattr(self, "text_embedder_id_", None)
        backend = fitted.split(":", 1)[0] if fitted else None
        text = self.text
        if backend in ("minilm", "static") and text.embedder == "auto":
            return text.model_copy(update={"embedder": backend})
        posts = getattr(self, "_table_posts", None)
        if (fitted is None and text.embedder == "auto" and posts is not None
            and posts >= text.static_from_posts
                and not callable(getattr(self.image_embedder, "embed_text", None))):
            # A large table without CLIP: MiniLM would take hours (~50 captions/s), the static table seconds.
            return text.model_copy(update={"embedder": "static"})
        return text

    @property
    def text_embedder(self) -> Any:
        if self._text_embedder is None:
            # One device setting: captions are embedded where the photos are (image.device).
            embedder = make_text_embedder(self._text_settings(), self.image_embedder,
                                          device=self.image.device,
                                          onnx_dir=self.onnx_dir, cache_dir=self.features.cache_dir)
            expected = getattr(self, "text_embedder_id_", None)
            if expected is not None and embedder.id != expected:
                raise EmbedderMismatchError(
                    f"this model was trained with text embedder {expected!r} "
                    f"but {embedder.id!r} was built; retrain or "
                    "use the same text.embedder setting"
                )
            self._text_embedder = embedder
        return self._text_embedder

    @property
    def quality_version(self) -> str:
        """How photo quality is measured: the version this pipeline was fitted with (quality-v1 for pipelines
        fitted before versions were recorded), or the current one before `fit`."""
        if hasattr(self, "feature_names_"):
            return getattr(self, "quality_version_", "quality-v1")
        return QUALITY_VERSION

    @property
    def photo_decoding(self) -> PhotoDecoding:
        """How photos are decoded for the image embedder and the quality measures: the version this pipeline
        was fitted with ("full" for pipelines fitted before versions were recorded), or the current one
        before `fit`; a scaled decode never goes below the embedder's input or the measures' 512 px. An
        embedder that states no `input_size` (the registry asks only for `id`, `dim` and `embed_paths`) gets
        whole photos: nothing says how far it could be scaled."""
        fitted = hasattr(self, "feature_names_")
        version = getattr(self, "photo_decoding_", "full") if fitted else PHOTO_DECODING
        size = getattr(self.image_embedder, "input_size", None) if version != "full" else None
        if size is None:
            return PhotoDecoding()
        return PhotoDecoding(version, shortest=int(size), longest=ANALYSIS_SIDE)

    def _namespace(self, name: str) -> str:
        """The feature cache namespace of photo vectors (`name`: the image embedder id or quality version):
        a scaled decoding gives other vectors, so it names its own; a full decode keeps the old name."""
        key = self.photo_decoding.key
        return f"{name}+{key}" if key else name

    @property
    def image_namespace(self) -> str:
        """The feature cache namespace of this pipeline's image vectors."""
        return self._namespace(self.image_embedder.id)

    @property
    def onnx_dir(self) -> Path:
        """Where the embedders' ONNX exports are kept: beside
        the feature cache, derived and disposable too."""
        return Path(self.features.cache_dir) / "onnx"

    def __getstate__(self) -> dict[str, Any]:
        # Torch models are rebuilt from the settings when a bundle is loaded, never pickled.
        state = self.__dict__.copy()
        state["_image_embedder"] = None
        state["_text_embedder"] = None
        return state

    # -- step 1: vectors -------------------------------------------------------------------------
    def embed(self, posts: pd.DataFrame, *, progress: bool = True,
              engine: Engine | None = None) -> PostVectors:
        """Image embedding, image quality and caption embedding of every post, through the disk cache.

        `engine` computes the vectors the cache lacks (default: here, `engage.features.local_engine`): local
        and Ray runs read and fill the same cache.
        """
        engine = engine or LOCAL
        if not hasattr(self, "feature_names_") and getattr(self, "_table_posts", None) != len(posts):
            self._table_posts = len(posts)  # text.embedder=auto chooses by the training table's size
            self._text_embedder = None
        paths = [p if isinstance(p, str) and p else None for p in posts["image"].tolist()]
        image_keys = _image_keys(paths)
        have = [i for i, k in enumerate(image_keys) if k is not None]
        missing_files = sum(1 for p, k in zip(paths, image_keys, strict=True) if p is not None and k is None)
        if missing_files:
            log.warning("%d posts name an image file that does not exist; "
                        "their image features are left empty", missing_files)
        cache_root = Path(self.features.cache_dir)

        if have:
            image = np.full((len(posts), self.image_embedder.dim), np.nan, dtype=np.float32)
        # no photos: one NaN row seen n times (read-only), not n x 1280 floats (5 GB at a million posts)
        else:
            image = np.broadcast_to(np.full((1, self.image_embedder.dim), np.nan, dtype=np.float32),
                                    (len(posts), self.image_embedder.dim))
        quality = np.full((len(posts), len(QUALITY_COLUMNS)), np.nan, dtype=np.float32)
        if have:
            have_paths = [str(paths[i]) for i in have]  # every one a path (its key is not None)
            have_keys = [key for key in image_keys if key is not None]  # the keys of `have`, in order
            image[have] = cached_vectors(
                have_keys,
                lambda idx: engine.embed_images(self, [have_paths[i] for i in idx]),
                FeatureCache(cache_root, self.image_namespace), chunk_size=engine.chunk_size,
                progress=progress, desc=f"embedding photos ({self.image_embedder.id})",
            )
            quality[have] = cached_vectors(
                have_keys,
                lambda idx: engine.measure_quality(self, [have_paths[i] for i in idx]),
                FeatureCache(cache_root, self._namespace(self.quality_version)),
                chunk_size=engine.chunk_size,
                progress=progress, desc="measuring photo quality",
            )
        captions = posts["caption"].tolist()
        caption = cached_vectors(
            [text_sha256(c) for c in captions],
            lambda idx: engine.embed_captions(self, [captions[i] for i in idx]),
            FeatureCache(cache_root, self.text_embedder.id), chunk_size=engine.chunk_size,
            # longest first, so that a chunk's captions batch with little padding
            max_chunk_size=MAX_CHUNK, order=-np.fromiter(map(len, captions), np.int64, len(captions)),
            progress=progress, desc=f"embedding captions ({self.text_embedder.id})",
        )
        return PostVectors(image, np.asarray(caption, dtype=np.float32), quality)

    # -- step 2: features ------------------------------------------------------------------------
    def fit(self, vectors: PostVectors, rows: np.ndarray | None = None) -> FeaturePipeline:
        """Learn everything `transform` needs from the training rows: the embedder ids (building the embedders
        if `embed` has not), the PCA of image and caption embeddings, and the feature names."""
        rows = np.arange(len(vectors)) if rows is None else np.asarray(rows)
        k = self.features.embedding_components
        decoding = self.photo_decoding.version  # what `embed` decoded with (read before anything is set)
        self.image_embedder_id_ = self.image_embedder.id
        self.text_embedder_id_ = self.text_embedder.id
        self.quality_version_ = QUALITY_VERSION  # the measures `embed` made (scoring makes them the same way)
        self.photo_decoding_ = decoding  # how `embed` decoded the photos (scoring decodes them the same way)
        self.image_pca_ = _fit_pca(vectors.image, rows, k, self.seed)
        self.caption_pca_ = _fit_pca(vectors.caption, rows, k, self.seed)
        self.feature_names_ = self._declared_feature_names()
        return self

    def _declared_feature_names(self) -> list[str]:
        """The feature table's columns, in order, from each stage's column list and the fitted PCAs."""
        names = [*CAPTION_COLUMNS, *QUALITY_COLUMNS, *HISTORY_COLUMNS, *DUPLICATE_COLUMNS, "sponsored",
                 "is_video"]
        if self.text_embedder_id_.startswith("open_clip"):
            names.append("image_caption_similarity")
        for prefix, pca in (("photo_pc", self.image_pca_), ("caption_pc", self.caption_pca_)):
            if pca is not None:
                names += [f"{prefix}{i + 1}" for i in range(pca.n_components_)]
        return names

    def _check_fitted(self, verb: str) -> None:
        if not hasattr(self, "feature_names_"):
            raise NotFittedError(
                f"FeaturePipeline.{verb} needs a fitted pipeline: call fit(vectors, rows) first")

    def transform(self, posts: pd.DataFrame, vectors: PostVectors, rows: np.ndarray | list[int] | None = None,
                  *,
                  engine: Engine | None = None, duplicates: pd.DataFrame | None = None) -> pd.DataFrame:
        """Features of `rows` (positions in `posts`; default all), computed against every row as context.

        `engine` computes the history and duplicate features (default: here; the Ray engine partitions the
        table and calls the same functions per partition). `duplicates`: the rows' duplicate features counted
        elsewhere (one per row, in order; scoring counts them against a model's prepared context), so `posts`
        need only hold the rows' own accounts' posts."""
        self._check_fitted("transform")
        posts = posts.reset_index(drop=True)
        rows = np.arange(len(posts)) if rows is None else np.asarray(rows, dtype=int)
        engine = engine or LOCAL
        history = engine.history(posts, vectors.image, vectors.caption, n_last=self.features.history_posts,
                                 rows=rows)
        if duplicates is None:
            duplicates = self._duplicates(posts, vectors, rows, engine)
        else:
            duplicates = duplicates.set_axis(rows)
        return self._assemble(posts, vectors, rows, history, duplicates)

    def transform_at_times(self, posts: pd.DataFrame, vectors: PostVectors, row: int,
                           times: list[pd.Timestamp],
                           *, duplicates: pd.DataFrame | None = None) -> pd.DataFrame:
        """Features of the post at `row` as if posted at each
        of `times` (later than all its context), in one pass.

        `duplicates`, as for `transform`: one row per time, counted elsewhere.

        The same feature functions as `transform`, arranged so that the candidates never see each other:
        for history, each candidate gets its own copy of the account's earlier posts; for duplicates, the
        candidates share the account, and a post never counts as a duplicate of its own account's posts.
        """
        self._check_fitted("transform_at_times")
        posts = posts.reset_index(drop=True)
        fs = self.features
        own = np.flatnonzero(
            ((posts["account"] == posts["account"].iloc[row]) & (posts.index != row)).to_numpy())
        draft = posts.iloc[[row]]
        n = len(times)

        candidates = pd.concat([draft] * n, ignore_index=True)
        candidates["posted_at"] = pd.to_datetime(list(times), utc=True)
        candidates["post_id"] = [f"{draft['post_id'].iloc[0]}@{k}" for k in range(n)]
        if duplicates is None:
            others = np.flatnonzero((posts["account"] != posts["account"].iloc[row]).to_numpy())
            dup_posts = pd.concat([posts.iloc[others], posts.iloc[own], candidates], ignore_index=True)
            dup_vectors = PostVectors.concat([vectors.take(others), vectors.take(own),
                                              vectors.take([row] * n)])
            dup_rows = np.arange(len(dup_posts) - n, len(dup_posts))
            duplicates = self._duplicates(dup_posts, dup_vectors, dup_rows)

        copies = []
        for k in range(n):
            copy = pd.concat([posts.iloc[own], candidates.iloc[[k]]], ignore_index=True)
            copy["account"] = f"{draft['account'].iloc[0]}\x1f{k}"
            copies.append(copy)
        hist_posts = pd.concat(copies, ignore_index=True)
        hist_vectors = PostVectors.concat([PostVectors.concat([vectors.take(own), vectors.take([row])])] * n)
        hist_rows = np.arange(len(own), len(hist_posts), len(own) + 1)
        history = history_features(hist_posts, hist_vectors.image, hist_vectors.caption,
                                   n_last=fs.history_posts, rows=hist_rows)

        index = np.arange(n)
        return self._assemble(candidates, vectors.take([row] * n), index, history.set_axis(index),
                              duplicates.set_axis(index))

    def transform_as_drafts(self, posts: pd.DataFrame, vectors: PostVectors, rows: np.ndarray,
                            anchors: np.ndarray,
                            features: pd.DataFrame) -> pd.DataFrame:
        """Features of each post `rows[k]` scored as a draft before `anchors[k]` (an earlier post of its
        account) was published: its own photo, caption and time, with the history the anchor had (the
        account's posts before the anchor; the posts between the anchor and it are not yet there). Index
        0..len(rows)-1.

        What the creator's question needs ("of two drafts, which does better?": both drafts see the same
        history). The same feature functions as `transform`: each row gets its own copy of the anchor's
        earlier posts under its own account key, the row last. Duplicate features look at other accounts
        only, so each row keeps those of `features` (the table `transform` made of `posts`).
        """
        self._check_fitted("transform_as_drafts")
        posts = posts.reset_index(drop=True)
        rows, anchors = np.asarray(rows, dtype=np.int64), np.asarray(anchors, dtype=np.int64)
        if len(rows) != len(anchors):
            raise ValueError(f"{len(rows)} rows but {len(anchors)} anchors: one anchor per row")
        n_last = self.features.history_posts
        timeline = AccountTimeline(posts, posted_at_ns(posts))
        accounts = timeline.account_codes
        if (accounts[rows] != accounts[anchors]).any() or (
            timeline.rank[anchors] >= timeline.rank[rows]).any():
            raise ValueError("each anchor must be an earlier post of its row's account")
        # Only the last n_last posts before the anchor shape
        # the features (n_earlier_posts is capped at n_last).
        end = timeline.rank[anchors]
        start = np.maximum(timeline.group_start[anchors], end - n_last)
        lengths = end - start + 1
        offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
        sorted_pos = np.repeat(start, lengths) + np.arange(lengths.sum()) - offsets
        take = timeline.order[np.minimum(sorted_pos, len(posts) - 1)]
        last = np.cumsum(lengths) - 1
        take[last] = rows  # the draft itself closes each copy
        copies = posts.iloc[take].reset_index(drop=True)
        copies["account"] = np.repeat(np.arange(len(rows)), lengths).astype(str)
        copy_vectors = vectors.take(take)
        history = history_features(copies, copy_vectors.image, copy_vectors.caption, n_last=n_last, rows=last)
        duplicates = features.loc[rows, list(DUPLICATE_COLUMNS)].set_axis(last)
        table = self._assemble(copies, copy_vectors, last, history, duplicates)
        return table.reset_index(drop=True)

    def _duplicates(self, posts: pd.DataFrame, vectors: PostVectors, rows: np.ndarray, engine: Engine = LOCAL
                    ) -> pd.DataFrame:
        fs = self.features
        return engine.duplicates(
            posts, vectors.image, vectors.caption,
            image_threshold=fs.duplicate_image_cosine, caption_threshold=fs.duplicate_caption_cosine,
            window_hours=fs.duplicate_window_hours, rows=rows,
        )

    def _assemble(self, posts: pd.DataFrame, vectors: PostVectors, rows: np.ndarray, history: pd.DataFrame,
                  duplicates: pd.DataFrame) -> pd.DataFrame:
        """The feature table of `rows`: caption and quality measures, the given history and duplicate
        features, flags of the post, and the PCA components of its embeddings.

        Every part is a float block in the order of `rows`, stacked once into one matrix: framing the
        columns part by part cost a scored draft more than computing them."""
        fs = self.features
        parts: list[tuple[list[str], np.ndarray]] = []
        index = pd.Index(rows)
        captions = caption_features(posts["caption"].iloc[rows].tolist())  # its rows in the order of `rows`
        parts.append((list(captions.columns), captions.to_numpy(dtype=np.float64)))
        for frame in (history, duplicates):
            if not frame.index.equals(index):  # an engine may hand its rows back in another order
                frame = frame.reindex(index)
            parts.append((list(frame.columns), frame.to_numpy(dtype=np.float64)))
        parts.insert(1, (list(QUALITY_COLUMNS), vectors.quality[rows].astype(np.float64)))
        sponsored = posts["sponsored"].iloc[rows]
        # the canonical table's is boolean: straight to float
        if not pd.api.types.is_bool_dtype(sponsored.dtype):
            sponsored = sponsored.astype("Float64")
        flags = np.column_stack([sponsored.to_numpy(dtype=np.float64, na_value=np.nan),
                                 posts["is_video"].iloc[rows].to_numpy(dtype=np.float64)])
        parts.append((["sponsored", "is_video"], flags))
        if self.text_embedder_id_.startswith("open_clip"):
            similarity = image_caption_similarity(vectors.image[rows], vectors.caption[rows])
            parts.append((["image_caption_similarity"],
                          np.asarray(similarity, dtype=np.float64).reshape(-1, 1)))
        for prefix, pca, matrix in (("photo_pc", self.image_pca_, vectors.image),
                                    ("caption_pc", self.caption_pca_, vectors.caption)):
            if pca is not None:
                parts.append(([f"{prefix}{i + 1}" for i in range(pca.n_components_)],
                              _components(pca, matrix[rows])))
        names = [name for columns, _ in parts for name in columns]
        table = np.concatenate([block for _, block in parts], axis=1)
        if names != self.feature_names_:
            # A pipeline fitted by an older engage gets its own columns back when this version only added
            # some (a new history column such as posts_last_30_days); anything else needs a refit.
            position = {name: k for k, name in enumerate(names)}
            missing = [name for name in self.feature_names_ if name not in position]
            if missing:
                raise NotFittedError(
                    f"this pipeline was fitted with features this version of engage does not compute "
                    f"({', '.join(missing[:5])}); refit it with this version of engage")
            table = table[:, [position[name] for name in self.feature_names_]]
            names = list(self.feature_names_)
        # History length beyond the window is capped so that a bundle's stored context (the last N posts)
        # gives the same value as the full history did at training time.
        if "n_earlier_posts" in names:
            capped = names.index("n_earlier_posts")
            table[:, capped] = np.minimum(table[:, capped], fs.history_posts)
        return pd.DataFrame(table, columns=names, index=rows)


def _fit_pca(matrix: np.ndarray, rows: np.ndarray, k: int, seed: int) -> PCA | None:
    """PCA of the complete rows among `rows`; the rows
    without a vector (NaN first column) are never copied."""
    rows = np.asarray(rows)
    candidates = rows[np.isfinite(matrix[rows, 0])] if matrix.shape[1] else rows[:0]
    chosen = matrix[candidates]
    ok = ~np.isnan(chosen).any(axis=1)
    k = min(k, int(ok.sum()) - 1, matrix.shape[1])
    if k < 1:
        return None
    return PCA(n_components=k, random_state=seed).fit(chosen[ok])


def _components(pca: PCA, matrix: np.ndarray) -> np.ndarray:
    """The PCA components of each row (NaN rows for rows without an embedding)."""
    out = np.full((len(matrix), pca.n_components_), np.nan)
    ok = ~np.isnan(matrix).any(axis=1)
    if ok.any():
        out[ok] = pca.transform(matrix[ok])
    return out
