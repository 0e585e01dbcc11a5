"""The JPEG fast path: JPEG bytes decoded, resized and normalised on the embedder's device, then embedded.

On CUDA the JPEGs are decoded by nvJPEG and preprocessed on the GPU, so the CPU never touches a pixel; on
the CPU the same steps run in torch (uint8 resize, >10x faster than float). It gives the same vectors as
the embedders' PIL path to within resize rounding (tests/embed/test_image.py) and is what
benchmarks/embed_throughput.py measures.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from engage.embed.decoding import MAX_PIXELS, check_image_size
from engage.embed.device import resolve_device
from engage.embed.image import TorchImageEmbedder, warn_failures
from engage.errors import DataError, EmbedderError

_EXIF_ORIENTATION = 0x0112


def _jpeg_orientation(jpeg: bytes, max_pixels: int = MAX_PIXELS) -> int | str:
    """The EXIF orientation from a JPEG's header, or why it must not be decoded (`check_image_size`)."""
    try:
        with Image.open(io.BytesIO(jpeg), formats=["JPEG"]) as im:  # reads the header only
            check_image_size(*im.size, max_pixels=max_pixels)
            try:
                return int(im.getexif().get(_EXIF_ORIENTATION, 1))
            except Exception:  # unreadable EXIF: decode the pixels upright rather than lose the photo
                return 1
    except DataError as e:
        return e.message
    except Exception as e:
        return f"not a decodable JPEG ({type(e).__name__})"


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
    """uint8 (3, H, W) tensors on `device`, or an error message per image that could not be decoded.

    Headers are checked first, so a bomb or a thin strip is refused before nvJPEG or libjpeg allocates it.
    """
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list[torch.Tensor | str] = [_jpeg_orientation(raw) for raw in jpegs]  # type: ignore[misc]
    todo = [i for i, header in enumerate(out) if isinstance(header, int)]
    data = [torch.frombuffer(bytearray(jpegs[i]), dtype=torch.uint8) for i in todo]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision.io points to torchcodec
        try:
            decoded: list[torch.Tensor | str] = list(decode_jpeg(data, mode=ImageReadMode.RGB,
                                                                 device=device)) if data else []
        except Exception:
            decoded = []
            for tensor in data:  # find which one failed
                try:
                    decoded.append(decode_jpeg(tensor, mode=ImageReadMode.RGB, device=device))
                except Exception as e:
                    decoded.append(f"not a decodable JPEG ({e})")
    for i, image in zip(todo, decoded, strict=True):
        out[i] = _orient(image, int(out[i])) if isinstance(image, torch.Tensor) else image  # type: ignore[arg-type]
    return out


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
        height, width = image.shape[-2:]
        groups.setdefault((int(height), int(width)), []).append(i)
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
    target = resolve_device(device)
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
    warn_failures(embedder.last_failures, embedder.id)
    return out
