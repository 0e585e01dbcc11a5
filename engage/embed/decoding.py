"""Decoding a post's photo: the one image decoder of the project (training, scoring and the HTTP API).

`open_image` turns a file path or raw bytes into an RGB PIL image with EXIF rotation applied, and refuses
non-images, truncated files, decompression bombs (more than `MAX_PIXELS`) and strips thinner than
1:`MAX_ASPECT_RATIO` (both checked from the header by `check_image_size` before any pixel is decoded) with
a `DataError` that names the file or field. The JPEG fast path checks its headers with the same function.

`decode_photo` is the same decoder with a `PhotoDecoding`: how a model's photos are decoded, by version
(`PHOTO_DECODINGS`; a fitted pipeline records its own, so a model decodes as it was trained). "full" decodes
every pixel. "jpeg-scaled-v1" lets libjpeg decode a JPEG far larger than needed at 1/2, 1/4 or 1/8 of its
size (DCT scaling, PIL's `Image.draft`), choosing the smallest scale whose shortest side is still at least
the embedder's input and whose longest side is at least the quality measures' 512 px: a 1080 px photo is
decoded at 540 px (a baseline JPEG in 3 ms instead of 5; a progressive one, as Instagram serves them, saves
about a fifth), a 4000 x 3000 one at 1000 x 750; a photo smaller than twice what is needed (the demo's
160-320 px JPEGs) and a PNG or WebP are decoded in full, as before. What it changes in the vectors and the
measures: docs/performance.md, "Reduced-size JPEG decoding, jpeg-scaled-v1".
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
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

#: How photos are decoded for the embedders and the quality measures, by version (see the module's text).
PHOTO_DECODINGS = ("full", "jpeg-scaled-v1")
PHOTO_DECODING = "jpeg-scaled-v1"  # what new models are trained with
_JPEG_SCALES = (8, 4, 2)  # the reduced scales libjpeg decodes at (1/8, 1/4, 1/2), largest reduction first
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class PhotoDecoding:
    """How a photo is decoded: `version` (one of `PHOTO_DECODINGS`) and, for a scaled one, the smallest
    `shortest` and `longest` sides a reduced decode may have (the embedder's input; the quality measures'
    analysis side). The default decodes every pixel."""

    version: str = "full"
    shortest: int = 0
    longest: int = 0

    def __post_init__(self) -> None:
        if self.version not in PHOTO_DECODINGS:
            raise DataError(f"unknown photo decoding {self.version!r}; this engage knows "
                            f"{', '.join(PHOTO_DECODINGS)}")

    @property
    def key(self) -> str:
        """What names its vectors in the feature cache: empty for a full decode (the namespaces of before)."""
        return "" if self.version == "full" else f"{self.version}:{self.shortest}x{self.longest}"

    def scale(self, width: int, height: int) -> int:
        """The denominator (1, 2, 4 or 8) a JPEG of `width` x `height` is decoded at: the largest whose
        decoded sides (rounded up, as libjpeg rounds) are still at least `shortest` and `longest`."""
        if self.version == "full":
            return 1
        short, long = sorted((int(width), int(height)))
        for s in _JPEG_SCALES:
            if -(-short // s) >= self.shortest and -(-long // s) >= self.longest:
                return s
        return 1


FULL_DECODING = PhotoDecoding()


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
    animation) into an 8-bit RGB image, EXIF rotation applied, every pixel (`decode_photo` with the full
    decoding).

    Every image the project uses goes through here (training, quality, scoring, history photos) or, for the
    JPEG fast path, through the same `check_image_size`. Raises `DataError` naming the file (or `name` for
    bytes) when the input is not one of those formats, is truncated or corrupt, or has a size refused by
    `check_image_size` (checked from the header, before any pixel data is decoded). Transparent images are
    flattened onto white; 16-bit images are scaled to 8 bits; CMYK and palette images are converted.
    """
    return decode_photo(source, max_pixels=max_pixels, name=name)[0]


def decode_photo(source: bytes | str | os.PathLike, *, decoding: PhotoDecoding = FULL_DECODING,
                 max_pixels: int = MAX_PIXELS, name: str = "image") -> tuple[Image.Image, tuple[int, int]]:
    """`open_image`, decoding a large JPEG at the reduced scale `decoding` allows (`PhotoDecoding.scale`):
    the RGB image, EXIF rotation applied, and the photo's own (width, height), upright, before any scaling
    (what the quality measures report). Refuses the same inputs, the same way, as `open_image`.
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
        width, height = image.size
        scale = decoding.scale(width, height) if image.format in ("JPEG", "MPO") else 1
        if scale > 1:
            # libjpeg's DCT scaling picks the largest scale with w // scale >= the size asked for: this one
            image.draft(None, (width // scale, height // scale))
        image.load()
        if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):  # exif_transpose turns it a quarter
            width, height = height, width
        # in_place: an upright photo is not copied (a 40-megapixel one would cost another 120 MB)
        ImageOps.exif_transpose(image, in_place=True)
        return _to_rgb(image), (width, height)
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
