"""Decoding a post's photo: the one image decoder of the project (training, scoring and the HTTP API).

`open_image` turns a file path or raw bytes into an RGB PIL image with EXIF rotation applied, and refuses
non-images, truncated files and decompression bombs (more than `MAX_PIXELS`, checked from the header before
any pixel is decoded) with a `DataError` that names the file or field.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from engage.errors import DataError

ImageInput = str | os.PathLike | bytes | Image.Image

# What phones and Instagram produce (PIL's JPEG opener also reads the MPO JPEGs some phones write).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")
#: Largest image accepted anywhere (training, scoring, the API), in pixels: ~ 6300 x 6300. Larger is not a
#: photo a person posts, but may be a decompression bomb.
MAX_PIXELS = 40_000_000


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


def as_pil(item: ImageInput, index: int) -> Image.Image:
    """A PIL image of any accepted input (path, bytes or PIL image), named `image {index}` in errors."""
    if isinstance(item, Image.Image):
        return _to_rgb(item)
    return open_image(item, name=f"image {index}")
