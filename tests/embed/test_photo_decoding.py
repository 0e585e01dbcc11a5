"""Reduced-size JPEG decoding (photo decoding `jpeg-scaled-v1`): the size rule, and what it leaves alone."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from engage.embed.decoding import (
    FULL_DECODING,
    PHOTO_DECODING,
    PHOTO_DECODINGS,
    PhotoDecoding,
    decode_photo,
    open_image,
)
from engage.errors import DataError

SCALED = PhotoDecoding("jpeg-scaled-v1", shortest=224, longest=512)  # EfficientNet-Lite0's and quality's


def _jpeg(width: int, height: int, *, exif: bytes | None = None, photo: bool = False) -> bytes:
    if photo:  # a real photo's detail, so that decoding at a reduced scale has something to lose
        image = Image.fromarray(skimage.data.astronaut()).resize((width, height))
    else:
        image = Image.new("RGB", (width, height), (200, 120, 40))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, **({"exif": exif} if exif else {}))
    return out.getvalue()


@pytest.mark.parametrize(("size", "decoded"), [
    ((1080, 1080), (540, 540)),  # Instagram's square: 1/2, the longest side 540 >= 512
    ((1080, 1350), (540, 675)),  # 4:5 portrait
    ((1080, 720), (540, 360)),  # landscape
    ((1024, 1024), (512, 512)),  # exactly what is needed
    ((1023, 1023), (512, 512)),  # libjpeg rounds up: 511.5 -> 512
    ((1022, 1022), (1022, 1022)),  # 511 would be below 512: decoded in full
    ((4000, 3000), (1000, 750)),  # a camera's photo: 1/4 (1/8 would be 500 < 512)
    ((4096, 4096), (512, 512)),  # 1/8
    ((1200, 400), (1200, 400)),  # 1/2 would leave the shortest side 200 < 224: decoded in full
    ((320, 320), (320, 320)),  # the demo's photos: untouched
    ((160, 160), (160, 160)),  # the smoke demo's
])
def test_a_large_jpeg_is_decoded_at_the_smallest_scale_that_keeps_what_is_needed(size, decoded):
    image, own = decode_photo(_jpeg(*size), decoding=SCALED)
    assert image.size == decoded and image.mode == "RGB"
    assert own == size  # the photo's own size, for the quality measures' width and height
    assert min(image.size) >= min(224, *size) and max(image.size) >= min(512, max(size))


def test_the_scale_rule_never_goes_below_what_is_needed():
    rng = np.random.default_rng(0)
    for width, height in rng.integers(100, 6000, size=(500, 2)):
        scale = SCALED.scale(width, height)
        assert scale in (1, 2, 4, 8)
        if scale > 1:
            short, long = sorted((-(-width // scale), -(-height // scale)))
            assert short >= 224 and long >= 512
        bigger = 2 * scale  # and the next scale would have gone below
        if bigger <= 8:
            assert -(-min(width, height) // bigger) < 224 or -(-max(width, height) // bigger) < 512


def test_exif_rotation_is_applied_and_the_own_size_is_the_upright_one():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image, own = decode_photo(_jpeg(1080, 720, exif=exif.tobytes()), decoding=SCALED)
    assert image.size == (360, 540) and own == (720, 1080)
    full, own_full = decode_photo(_jpeg(1080, 720, exif=exif.tobytes()))
    assert full.size == own_full == (720, 1080)


def test_the_full_decoding_and_small_photos_give_the_pixels_of_before():
    photo = _jpeg(1080, 1080, photo=True)
    image, own = decode_photo(photo)  # the default: what models trained before jpeg-scaled-v1 use
    assert own == (1080, 1080)
    assert np.array_equal(np.asarray(image), np.asarray(open_image(photo)))
    for side in (160, 320, 1000):  # the demo's photos (160 and 320 px) and any under 2 x 512: bit for bit
        small = _jpeg(side, side, photo=True)
        scaled = np.asarray(decode_photo(small, decoding=SCALED)[0])
        assert np.array_equal(scaled, np.asarray(open_image(small)))


def test_a_png_is_never_scaled():
    out = io.BytesIO()
    Image.new("RGB", (2000, 2000), (10, 200, 10)).save(out, format="PNG")
    image, own = decode_photo(out.getvalue(), decoding=SCALED)
    assert image.size == own == (2000, 2000)


def test_a_scaled_decode_is_close_to_the_full_one_seen_at_the_same_size():
    photo = _jpeg(1080, 1080, photo=True)
    scaled = np.asarray(decode_photo(photo, decoding=SCALED)[0], dtype=np.float32)
    full = np.asarray(open_image(photo).reduce(2), dtype=np.float32)  # box-averaged to the same 540 px
    assert scaled.shape == full.shape == (540, 540, 3)
    assert np.abs(scaled - full).mean() < 3.0  # a few levels of 255: DCT scaling is a box filter too


def test_the_scaled_decoding_refuses_what_the_full_one_refuses():
    with pytest.raises(DataError, match="truncated or corrupt"):
        decode_photo(_jpeg(1080, 1080, photo=True)[:5000], decoding=SCALED)
    with pytest.raises(DataError, match="more elongated"):
        decode_photo(_jpeg(2100, 100), decoding=SCALED)


def test_versions_are_known_and_an_unknown_one_is_refused():
    assert PHOTO_DECODING in PHOTO_DECODINGS and FULL_DECODING.version == "full" and FULL_DECODING.key == ""
    assert SCALED.key == "jpeg-scaled-v1:224x512"
    with pytest.raises(DataError, match="unknown photo decoding"):
        PhotoDecoding("jpeg-scaled-v9")
