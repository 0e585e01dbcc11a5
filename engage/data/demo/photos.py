"""Rendering the demo's photos: a photo plan -> pixels. No randomness here; every choice is in the plan.

The base photos are openly licensed samples that ship inside scikit-image (read from its data folder; the
fetchers that could download are never called).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from engage.data.demo.plans import PhotoPlan
from engage.data.demo.vocabulary import PHOTO_FILES, SUBJECTS, Look
from engage.errors import DataError


def photo_dir() -> Path:
    """scikit-image's bundled sample-image folder (part of the installed package)."""
    import skimage.data

    return Path(skimage.data.__file__).resolve().parent


@cache
def _base_photo(name: str) -> Image.Image:
    path = photo_dir() / PHOTO_FILES[name]
    if not path.is_file():
        raise DataError(
            f"the demo photo {name!r} is not in the installed "
            "scikit-image package; reinstall scikit-image (>=0.22)",
            file=path,
        )
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return image.convert("RGB")


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def apply_look(pixels: np.ndarray, look: Look, exposure: float = 1.0) -> np.ndarray:
    """Colour-grade an RGB uint8 array with `look` (and a careless exposure multiplier); returns uint8."""
    x = pixels.astype(np.float32) / 255.0
    lum = (x @ _LUMA)[..., None]
    x = lum + look.saturation * (x - lum)
    x *= np.array([1 + 0.15 * look.temperature, 1 + 0.03 * look.temperature, 1 - 0.15 * look.temperature],
                  dtype=np.float32)
    if look.split_tone:
        tone = (lum - 0.5) * 2 * look.split_tone * 0.12  # >0 highlights -> orange, <0 shadows -> teal
        x += tone * np.array([1.0, 0.25, -1.0], dtype=np.float32)
    x = (x - 0.5) * look.contrast + 0.5
    x *= look.brightness * exposure
    if look.fade:
        x = look.fade * 0.2 + x * (1 - 0.3 * look.fade)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def render_photo(plan: PhotoPlan, size: int) -> Image.Image:
    """The square `size` x `size` photo a plan describes:
    crop + zoom, flip, colour look, carelessness, text."""
    base = _base_photo(plan.photo)
    width, height = base.size
    x0, y0, x1, y1 = SUBJECTS.get(plan.photo, (0.0, 0.0, 1.0, 1.0))
    # A rotated crop needs a larger square around it so that no corner comes out empty.
    grow = abs(math.cos(math.radians(plan.angle))) + abs(math.sin(math.radians(plan.angle)))
    side = min(min(width, height) / plan.zoom * grow, min(width, height))
    cx = float(np.clip((x0 + plan.center[0] * (x1 - x0)) * width, side / 2, width - side / 2))
    cy = float(np.clip((y0 + plan.center[1] * (y1 - y0)) * height, side / 2, height - side / 2))
    outer = int(math.ceil(size * grow))
    image = base.resize((outer, outer), Image.Resampling.BICUBIC,
                        box=(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    if plan.angle:
        image = image.rotate(plan.angle, resample=Image.Resampling.BILINEAR)
    offset = (outer - size) // 2
    image = image.crop((offset, offset, offset + size, offset + size))
    if plan.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    image = Image.fromarray(apply_look(np.asarray(image), plan.look, plan.exposure))
    if plan.blur:
        image = image.filter(ImageFilter.GaussianBlur(plan.blur * size / 320))
    if plan.overlay:
        draw = ImageDraw.Draw(image)
        font = _font(max(10, size // 11))
        pad = max(3, size // 40)
        left_x, top_y, right_x, bottom_y = draw.textbbox((0, 0), plan.overlay, font=font)
        x0, y1 = pad, size - pad
        y0 = y1 - (bottom_y - top_y) - 2 * pad
        draw.rectangle((x0, y0, x0 + (right_x - left_x) + 2 * pad, y1), fill=(20, 20, 20))
        draw.text((x0 + pad - left_x, y0 + pad - top_y), plan.overlay, font=font, fill=(255, 255, 255))
    return image
