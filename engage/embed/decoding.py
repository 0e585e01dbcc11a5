"""Decoding a post's photo: the one image decoder of the project (training, scoring and the HTTP API).

`open_image` turns a file path or raw bytes into an RGB PIL image with EXIF rotation applied, and refuses
non-images, truncated files, decompression bombs (more than `MAX_PIXELS`) and strips thinner than
1:`MAX_ASPECT_RATIO` (both checked from the header by `check_image_size` before any pixel is decoded) with
a `DataError` that names the file or field. The JPEG fast path checks its headers with the same function.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engage.bounded import MAX_IMAGE_FILE_BYTES, open_regular
from engage.errors import DataError

ImageInput = str | os.PathLike | bytes | Image.Image

# What phones and Instagram produce (PIL's JPEG opener also reads the MPO JPEGs some phones write).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
#: Largest image accepted anywhere (training, scoring, the API), in pixels: ~ 6300 x 6300. Larger is not a
#: photo a person posts, but may be a decompression bomb.
MAX_PIXELS = 40_000_000
#: Longest side / shortest side accepted; thinner strips are refused (see check_image_size).
MAX_ASPECT_RATIO = 20


def check_image_size(width: int, height: int, *, max_pixels: int = MAX_PIXELS, label: str = "image") -> None:
    """Refuse, from the header alone, an image whose decoding or resizing would cost far more than a photo.

    Over `max_pixels` (a decompression bomb), no pixels, or thinner than 1:`MAX_ASPECT_RATIO`: the embedders
    resize the shortest side to their input size before cropping, so a 65000 x 1 strip would become a
    14,560,000 x 224 image (gigabytes). Raises `DataError` naming `label`.
    """
    if width < 1 or height < 1:
        raise DataError(f"image is {width}x{height}: it has no pixels", file=label)
    if width * height > max_pixels:
        raise DataError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(a decompression bomb or an unusually large photo); "
            "resize it before using it (a feed shows photos "
            "1080 px wide: a 1080 px JPEG fits)",
            file=label,
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise DataError(
            f"image is {width}x{height}, more elongated than "
            f"{MAX_ASPECT_RATIO}:1, which is not a photo a feed "
            "shows (Instagram crops to between 1.91:1 and 4:5); crop it before using it",
            file=label,
        )


def declared_pixels(data: bytes) -> int:
    """Width x height from an image's header, without decoding it (0 when the header cannot be read; decoding
    will then say why)."""
    try:
        with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as image:
            return int(image.size[0]) * int(image.size[1])
    except Exception:
        return 0


def open_image(source: bytes | str | os.PathLike, *, max_pixels: int = MAX_PIXELS,
               name: str = "image") -> Image.Image:
    """Decode a JPEG, PNG or WebP (the first frame of an
    animation) into an 8-bit RGB image, EXIF rotation applied.

    Every image the project uses goes through here (training, quality, scoring, history photos) or, for the
    JPEG fast path, through the same `check_image_size`. Raises `DataError` naming the file (or `name` for
    bytes) when the input is not one of those formats, is truncated or corrupt, or has a size refused by
    `check_image_size` (checked from the header, before any pixel data is decoded). Transparent images are
    flattened onto white; 16-bit images are scaled to 8 bits; CMYK and palette images are converted.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        label = name
        stream: Any = io.BytesIO(bytes(source))
    elif isinstance(source, str | os.PathLike):
        label = str(source)
        # A regular file of bounded size only: a path to /dev/zero or a FIFO is refused, not read forever.
        try:
            with open_regular(source, max_bytes=MAX_IMAGE_FILE_BYTES) as handle:
                stream = io.BytesIO(handle.read())
        except DataError as e:
            raise DataError(f"image file {e.message}; check the image path", file=label) from e
        except OSError as e:
            raise DataError(f"image file cannot be read ({e.strerror or e}); check the image path",
                            file=label) from e
    else:
        raise DataError(f"cannot read an image from a {type(source).__name__}; pass bytes or a file path",
                        file=name)

    try:
        with warnings.catch_warnings():
            # Our own max_pixels check below replaces PIL's warning; PIL's hard limit still raises.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=list(IMAGE_FORMATS))
        check_image_size(*image.size, max_pixels=max_pixels, label=label)
        image.load()
        # in_place: an upright photo is not copied (a 40-megapixel one would cost another 120 MB)
        ImageOps.exif_transpose(image, in_place=True)
        return _to_rgb(image)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"image is a decompression bomb: {e}", file=label) from e
    except UnidentifiedImageError as e:
        raise DataError(
            f"not a readable image; expected one of {', '.join(IMAGE_FORMATS)}",
            file=label,
        ) from e
    except MemoryError:
        raise
    except Exception as e:  # any decoder failure on hostile bytes (bad EXIF, odd chunks) is the file's fault
        reason = f"{type(e).__name__}: {e}"[:200]
        raise DataError(f"image is truncated or corrupt ({reason}); re-export or re-download it",
                        file=label) from e


_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT:
        # PIL's own conversion clips at 255, which turns a 16-bit greyscale photo white
        values = np.asarray(image, dtype=np.float32)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0
        image = Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), "L")
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


def as_pil(item: ImageInput, index: int) -> Image.Image:
    """A PIL image of any accepted input (path, bytes or PIL image), named `image {index}` in errors."""
    if isinstance(item, Image.Image):
        # an image made in memory is bounded the same way
        check_image_size(*item.size, label=f"image {index}")
        return _to_rgb(item)
    return open_image(item, name=f"image {index}")
