"""Image quality measures on constructed images whose answer is known."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from engage.errors import DataError
from engage.features.quality import QUALITY_COLUMNS, image_quality, quality_for_paths


def _photo(name: str = "astronaut") -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _with_caption(image: Image.Image) -> Image.Image:
    """Burn white, black-outlined promo text into the photo, as sponsored posts often do."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=image.width // 14)
    for line in range(3):
        draw.text(
            (image.width * 0.05, image.height * (0.1 + 0.3 * line)),
            "SALE 50% OFF TODAY",
            fill=(255, 255, 255),
            font=font,
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
    return image


def test_every_column_is_measured():
    measures = image_quality(_photo())
    assert list(measures) == list(QUALITY_COLUMNS)
    assert all(np.isfinite(v) for v in measures.values())


def test_blurred_photo_is_less_sharp_than_the_original():
    sharp = _photo()
    blurred = sharp.filter(ImageFilter.GaussianBlur(4))
    assert image_quality(blurred)["sharpness"] < 0.2 * image_quality(sharp)["sharpness"]


def test_black_image_is_dark_with_all_shadows_clipped():
    measures = image_quality(Image.new("RGB", (64, 48), (0, 0, 0)))
    assert measures["brightness"] == pytest.approx(0.0, abs=1e-6)
    assert measures["clipped_shadows"] == pytest.approx(1.0)
    assert measures["clipped_highlights"] == 0.0
    assert measures["contrast"] == pytest.approx(0.0, abs=1e-6)


def test_white_image_has_all_highlights_clipped():
    measures = image_quality(Image.new("RGB", (64, 48), (255, 255, 255)))
    assert measures["brightness"] == pytest.approx(1.0, abs=1e-3)
    assert measures["clipped_highlights"] == pytest.approx(1.0)


def test_grey_image_has_no_colour_and_saturated_red_has_a_lot():
    grey = image_quality(Image.new("RGB", (50, 50), (128, 128, 128)))
    red = image_quality(Image.new("RGB", (50, 50), (255, 0, 0)))
    assert grey["colourfulness"] == pytest.approx(0.0, abs=1e-4)
    assert grey["brightness"] == pytest.approx(128 / 255, abs=1e-3)
    # Hasler-Süsstrunk of a flat colour: 0.3 * |(R-G, (R+G)/2-B)| = 0.3 * hypot(255, 127.5)
    assert red["colourfulness"] == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-4)


def test_half_black_half_white_has_maximal_contrast():
    image = Image.new("L", (100, 100), 0)
    image.paste(255, (50, 0, 100, 100))
    measures = image_quality(image)
    assert measures["contrast"] == pytest.approx(0.5, abs=1e-3)
    assert measures["clipped_shadows"] == pytest.approx(0.5) and measures[
        "clipped_highlights"] == pytest.approx(0.5)


def test_size_and_aspect_ratio_are_of_the_original_image():
    wide = image_quality(Image.new("RGB", (200, 100)))
    assert (wide["width"], wide["height"], wide["aspect_ratio"]) == (200.0, 100.0, 2.0)
    large = image_quality(Image.new("RGB", (2000, 1000)))  # measured on a downscaled copy
    assert (large["width"], large["height"]) == (2000.0, 1000.0)


def test_burnt_in_text_raises_the_text_overlay_score():
    for name in ("chelsea", "coffee", "rocket"):
        plain = image_quality(_photo(name))["text_overlay"]
        captioned = image_quality(_with_caption(_photo(name)))["text_overlay"]
        assert plain < 0.05, name
        assert captioned > plain + 0.08, name


def test_quality_for_paths_gives_nan_rows_and_names_bad_files(tmp_path, caplog):
    good = tmp_path / "good.png"
    Image.new("RGB", (200, 100), (0, 0, 0)).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    missing = tmp_path / "missing.jpg"
    with caplog.at_level(logging.WARNING, logger="engage.features.quality"):
        table = quality_for_paths([good, bad, missing, good], progress=False)
    assert table.shape == (4, len(QUALITY_COLUMNS)) and table.dtype == np.float32
    assert np.isnan(table[[1, 2]]).all()
    aspect = QUALITY_COLUMNS.index("aspect_ratio")
    assert table[0, aspect] == 2.0 and np.array_equal(table[0], table[3])
    assert "2 image(s) could not be measured" in caplog.text
    assert str(bad) in caplog.text and str(missing) in caplog.text


@pytest.mark.parametrize("shape", [(512, 512), (512, 341), (7, 9), (3, 3), (1, 20), (300, 2)])
def test_the_text_overlay_top_hats_are_scipys_exactly(shape):
    """The top-hats are computed by doubling windows (fast); the values must stay scipy's, so the measure
    a model was trained with does not move."""
    from scipy import ndimage

    from engage.features.quality import _closing, _opening

    luma = (np.random.default_rng(shape[0] * 1000 + shape[1]).random(shape) * 255).astype(np.float32)
    np.testing.assert_array_equal(luma - _opening(luma, 7), ndimage.white_tophat(luma, size=7))
    np.testing.assert_array_equal(_closing(luma, 7) - luma, ndimage.black_tophat(luma, size=7))
    np.testing.assert_array_equal(_opening(luma, 5), ndimage.grey_opening(luma, size=5))


def test_quality_v2_box_averages_then_resamples_bilinearly_and_v1_resamples_the_full_photo_with_lanczos():
    from engage.features.quality import _analysis_copy

    photo = _photo("coffee").resize((1080, 1080))
    v1, v2 = _analysis_copy(photo, "quality-v1"), _analysis_copy(photo, "quality-v2")
    expected_v1 = photo.copy()
    expected_v1.thumbnail((512, 512), Image.Resampling.LANCZOS)
    expected_v2 = photo.reduce(2)
    expected_v2.thumbnail((512, 512), Image.Resampling.BILINEAR)
    assert v1.size == v2.size == (512, 512) and photo.size == (1080, 1080)  # the photo itself is untouched
    np.testing.assert_array_equal(np.asarray(v1), np.asarray(expected_v1))
    np.testing.assert_array_equal(np.asarray(v2), np.asarray(expected_v2))
    a, b = image_quality(photo, "quality-v1"), image_quality(photo, "quality-v2")
    for measure in ("brightness", "contrast", "clipped_highlights", "clipped_shadows"):
        assert abs(a[measure] - b[measure]) < 0.01, measure
    assert a["width"] == b["width"] == 1080 and abs(a["colourfulness"] - b["colourfulness"]) < 1


def test_a_small_photo_is_measured_the_same_by_both_versions():
    photo = _photo("coffee").resize((400, 300))
    assert image_quality(photo, "quality-v1") == image_quality(photo, "quality-v2")


def test_an_unknown_quality_version_is_refused():
    with pytest.raises(DataError, match="unknown quality measures 'quality-v9'"):
        image_quality(_photo(), "quality-v9")
