"""Image quality: a few cheap, explainable numbers about a post's photo.

`image_quality(image)` measures a downscaled copy (longest side 512 px, so a 12-megapixel photo costs the
same as a small one) and returns the values named in `QUALITY_COLUMNS`. How the copy is made is versioned
(`QUALITY_VERSIONS`): quality-v2, the current one, box-averages the photo by the largest whole factor that
keeps its longest side at 512 px or more (1080 -> 540) and resamples that bilinearly to 512 (5 ms at 1080 px);
quality-v1 resampled the full photo with LANCZOS (18 ms), which keeps a little more detail: v2's sharpness is
20-25 % lower, the other measures move by under 0.01 (docs/performance.md). A fitted pipeline records the
version it was trained with and scores drafts with it, so models trained before v2 keep their measures.
The photo they are measured on is decoded as the model decodes its photos (`PhotoDecoding`, recorded beside
the quality version): a large JPEG may arrive already reduced by libjpeg (1080 -> 540), in which case the
box average has nothing left to do and `width` / `height` still report the photo's own size.

* `sharpness` — variance of the Laplacian of the luma (0-255 scale); blurred or out-of-focus photos score low.
  Measured after downscaling, so it describes sharpness as seen in a feed, not at full resolution.
* `brightness` — mean luma, 0 (black) to 1 (white).
* `clipped_highlights` / `clipped_shadows` — share of pixels with luma >= 250 / <= 5 (blown-out / crushed).
* `contrast` — standard deviation of the luma, 0-1 scale.
* `colourfulness` — Hasler & Süsstrunk (2003) colourfulness on 0-255 RGB; 0 for a grey image.
* `width`, `height` — of the original image in pixels; `aspect_ratio` = width / height.
* `text_overlay` — a ROUGH share of the image covered by what looks like overlaid text: thin strokes that
  stand out strongly from their surroundings (morphological top-hat > 100 luma levels) at a density of
  8-60% per 16x16 block, kept only where at least three such blocks run side by side horizontally (text
  lines are wide). It reliably separates a photo with a caption burnt in from the same photo without it,
  but dense high-contrast texture (grass, gravel, printed fabric) also scores, and small or low-contrast
  text does not. Treat it as a hint for the model, not as OCR.

`quality_for_paths(paths)` runs it over files with a progress bar; a missing or undecodable image gets a
row of NaN and is named in a warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from engage.embed.decoding import FULL_DECODING, MAX_PIXELS, PhotoDecoding, decode_photo
from engage.errors import DataError, summarise_failures

logger = logging.getLogger(__name__)

#: How the 512 px analysis copy is made, by version (also
#: the cache namespace: a new one when a measure changes).
QUALITY_VERSIONS = ("quality-v1", "quality-v2")
QUALITY_VERSION = "quality-v2"  # what new models are trained with
_RESAMPLING = {"quality-v1": Image.Resampling.LANCZOS, "quality-v2": Image.Resampling.BILINEAR}
QUALITY_COLUMNS: tuple[str, ...] = (
    "sharpness",
    "brightness",
    "clipped_highlights",
    "clipped_shadows",
    "contrast",
    "colourfulness",
    "width",
    "height",
    "aspect_ratio",
    "text_overlay",
)
ANALYSIS_SIDE = 512  # longest side of the copy the measures are computed on

_STROKE_SIZE = 7  # px: top-hat window, about the stroke width of caption text on a 512 px image
_STROKE_CONTRAST = 100.0  # luma levels a stroke must stand out from its surroundings
_BLOCK = 16  # px: blocks in which stroke density is measured
_TEXT_DENSITY = (0.08, 0.6)  # stroke share of a block that looks like lettering (not empty, not solid)
_LINE_BLOCKS = 3  # text lines are at least this many blocks wide


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma, 0-255 float, as PIL's "L" conversion."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _colourfulness(rgb: np.ndarray) -> float:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _window_extreme(values: np.ndarray, size: int, axis: int, extreme: np.ufunc) -> np.ndarray:
    """`extreme` (np.minimum or np.maximum) over a centred window of odd `size` along `axis`, edges mirrored.

    The same values as `scipy.ndimage.minimum_filter1d` / `maximum_filter1d` (mode "reflect"; min and max are
    exact), 10-20x faster on a 512 px image: windows of 1, 2, 4, ... are combined by doubling, so a window of
    7 costs three element-wise passes.
    """
    half = size // 2
    pad = [(0, 0)] * values.ndim
    pad[axis] = (half, half)
    # numpy's "symmetric" is scipy's "reflect": d c b a | a b c d
    padded = np.pad(values, pad, mode="symmetric")
    out, width = padded, 1
    while width < size:
        step = min(width, size - width)  # windows of width and step combine into one of width + step
        n = out.shape[axis] - step
        head, tail = [slice(None)] * values.ndim, [slice(None)] * values.ndim
        head[axis], tail[axis] = slice(0, n), slice(step, step + n)
        out = extreme(out[tuple(head)], out[tuple(tail)])
        width += step
    return out


def _opening(luma: np.ndarray, size: int) -> np.ndarray:
    """Grey opening with a flat `size` x `size` square: `scipy.ndimage.grey_opening(luma, size)`, exactly."""
    eroded = _window_extreme(_window_extreme(luma, size, 0, np.minimum), size, 1, np.minimum)
    return _window_extreme(_window_extreme(eroded, size, 0, np.maximum), size, 1, np.maximum)


def _closing(luma: np.ndarray, size: int) -> np.ndarray:
    """Grey closing, the same way: `scipy.ndimage.grey_closing(luma, size)`."""
    dilated = _window_extreme(_window_extreme(luma, size, 0, np.maximum), size, 1, np.maximum)
    return _window_extreme(_window_extreme(dilated, size, 0, np.minimum), size, 1, np.minimum)


def _text_overlay(luma: np.ndarray) -> float:
    # White and black top-hats: strokes brighter or darker than their surroundings.
    strokes = np.maximum(luma - _opening(luma, _STROKE_SIZE),
                         _closing(luma, _STROKE_SIZE) - luma) > _STROKE_CONTRAST
    rows, cols = luma.shape[0] // _BLOCK, luma.shape[1] // _BLOCK
    if rows == 0 or cols < _LINE_BLOCKS:
        return 0.0
    density = strokes[: rows * _BLOCK, : cols * _BLOCK].reshape(rows, _BLOCK, cols, _BLOCK).mean(axis=(1, 3))
    lettering = (density > _TEXT_DENSITY[0]) & (density < _TEXT_DENSITY[1])
    lines = ndimage.binary_opening(lettering, structure=np.ones((1, _LINE_BLOCKS), dtype=bool))
    return float(lines.mean())


def _analysis_copy(image: Image.Image, version: str) -> Image.Image:
    """The RGB copy the measures are computed on: longest side at most ANALYSIS_SIDE, never upscaled."""
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    factor = max(image.size) // ANALYSIS_SIDE if version != "quality-v1" else 1
    if factor > 1:
        small = rgb.reduce(factor)  # a box average: a few ms where LANCZOS from full size took 20
    else:
        small = rgb.copy() if rgb is image else rgb  # thumbnail works in place
    if max(small.size) > ANALYSIS_SIDE:
        # v2: bilinear (the box average has already taken out what would alias; 3 ms against LANCZOS's 8)
        small.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), _RESAMPLING[version])
    return small


def image_quality(image: Image.Image, version: str = QUALITY_VERSION, *,
                  size: tuple[int, int] | None = None) -> dict[str, float]:
    """The `QUALITY_COLUMNS` measures of one image (any PIL mode; converted to RGB), made as `version` makes
    them (a model's pipeline passes the version it was trained with). `size`: the photo's own (width, height)
    when `image` was decoded at a reduced scale (`decode_photo`); default `image.size`."""
    if version not in QUALITY_VERSIONS:
        raise DataError(
            f"unknown quality measures {version!r}; this engage knows {', '.join(QUALITY_VERSIONS)}")
    width, height = size if size is not None else image.size
    if width == 0 or height == 0:
        raise DataError(f"image has no pixels ({width}x{height})")
    small = _analysis_copy(image, version)
    rgb = np.asarray(small, dtype=np.float32)
    luma = _luma(rgb)
    return {
        "sharpness": float(ndimage.laplace(luma).var()),
        "brightness": float(luma.mean() / 255.0),
        "clipped_highlights": float((luma >= 250).mean()),
        "clipped_shadows": float((luma <= 5).mean()),
        "contrast": float(luma.std() / 255.0),
        "colourfulness": _colourfulness(rgb),
        "width": float(width),
        "height": float(height),
        "aspect_ratio": float(width / height),
        "text_overlay": _text_overlay(luma),
    }


def _quality_row(path: str, max_pixels: int, version: str, decoding: PhotoDecoding) -> np.ndarray | str:
    try:
        picture, size = decode_photo(path, decoding=decoding, max_pixels=max_pixels)
        measures = image_quality(picture, version, size=size)
    except DataError as e:
        return e.message
    return np.array([measures[c] for c in QUALITY_COLUMNS], dtype=np.float32)


def quality_for_paths(
    paths: Sequence[str | os.PathLike],
    progress: bool = True,
    *,
    num_threads: int = 2,
    max_pixels: int = MAX_PIXELS,
    version: str = QUALITY_VERSION,
    decoding: PhotoDecoding = FULL_DECODING,
) -> np.ndarray:
    """`(n, len(QUALITY_COLUMNS))` float32, one row per file; NaN rows for missing/undecodable images.
    Each photo is decoded as `decoding` says (the model's own decoding: the pipeline passes it).

    Decoding and the measures run in `num_threads` threads (PIL, NumPy and SciPy release the GIL for the
    heavy parts). Files that failed are named in a logged warning.
    """
    out = np.full((len(paths), len(QUALITY_COLUMNS)), np.nan, dtype=np.float32)
    failures: dict[str, str] = {}
    names = [str(p) for p in paths]
    with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
        rows = pool.map(lambda p: _quality_row(p, max_pixels, version, decoding), names)
        for i, row in enumerate(tqdm(rows, total=len(names), unit="img", desc="image quality",
                                     disable=not progress)):
            if isinstance(row, str):
                failures[names[i]] = row
            else:
                out[i] = row
    if failures:
        logger.warning("%d image(s) could not be measured and got NaN quality rows: %s", len(failures),
                       summarise_failures(failures))
    return out
