"""Image embedders, the factory's choice of backend, the safe decoder and the JPEG fast path."""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import open_clip
import pytest
import skimage.data
import torch
from PIL import Image, ImageFile

from engage.config import ImageSettings
from engage.embed.decoding import open_image
from engage.embed.image import (
    EfficientNetEmbedder,
    OpenClipEmbedder,
    cached_clip_weights,
)
from engage.embed.jpeg import embed_jpeg_bytes
from engage.embed.registry import make_image_embedder
from engage.errors import DataError, EmbedderError

TINY = "engage-test-tiny-vit"
# A ViT small enough to build and run in well under a second on a laptop CPU.
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> OpenClipEmbedder:
    config_dir = tmp_path_factory.mktemp("open_clip_configs")
    (config_dir / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config_dir)
    torch.manual_seed(0)
    return OpenClipEmbedder(TINY, None, allow_random=True, device="cpu", batch_size=3, num_workers=0)


@pytest.fixture(scope="module")
def efficientnet() -> EfficientNetEmbedder:
    return EfficientNetEmbedder(device="cpu", batch_size=8, num_workers=0)


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _jpeg(image: Image.Image, **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, **save_kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        path = folder / f"{name}.jpg"
        path.write_bytes(_jpeg(_photo(name)))
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------ open_clip


def test_random_clip_embedder_is_labelled_random_and_gives_unit_rows(tiny_clip, photo_files):
    vectors = tiny_clip.embed(photo_files)
    assert tiny_clip.id == f"open_clip:{TINY}:random"
    assert tiny_clip.dim == 32
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])  # different photos, different vectors


def test_batched_embedding_equals_one_image_at_a_time(tiny_clip, photo_files):
    batched = tiny_clip.embed(photo_files)  # batch_size 3: one full batch and one partial
    single = np.vstack([tiny_clip.embed([path]) for path in photo_files])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_paths_bytes_and_pil_images_give_the_same_vector(tiny_clip, photo_files):
    path = photo_files[0]
    vectors = tiny_clip.embed([path, str(path), path.read_bytes(), Image.open(path)])
    np.testing.assert_allclose(vectors, np.repeat(vectors[:1], 4, axis=0), atol=1e-6)


def test_embed_raises_naming_the_unreadable_image(tiny_clip, tmp_path):
    with pytest.raises(DataError, match=r"image 1: not a readable image"):
        tiny_clip.embed([_photo("coffee"), b"definitely not an image"])


def test_embed_paths_in_workers_gives_nan_row_and_names_the_bad_file(tiny_clip, photo_files, tmp_path,
                                                                     caplog):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is a text file, not a photo")
    missing = tmp_path / "gone.jpg"
    paths = [photo_files[0], bad, photo_files[1], missing]
    tiny_clip.num_workers = 2
    try:
        with caplog.at_level(logging.WARNING, logger="engage.embed.image"):
            vectors = tiny_clip.embed_paths(paths, progress=False)
    finally:
        tiny_clip.num_workers = 0
    assert np.isnan(vectors[[1, 3]]).all()
    np.testing.assert_allclose(vectors[[0, 2]], tiny_clip.embed([photo_files[0], photo_files[1]]), atol=1e-5)
    assert set(tiny_clip.last_failures) == {str(bad), str(missing)}
    assert "2 image(s) could not be decoded" in caplog.text
    assert str(bad) in caplog.text and str(missing) in caplog.text


def test_text_tower_gives_unit_rows_in_the_image_space(tiny_clip):
    texts = ["a cat on a sofa", "espresso in a white cup", "a cat on a sofa"]
    vectors = tiny_clip.embed_text(texts)
    assert vectors.shape == (3, tiny_clip.dim)
    assert tiny_clip.text_id == f"open_clip_text:{TINY}:random"
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert not np.allclose(vectors[0], vectors[1])


def test_open_clip_without_weights_refuses_random_weights_and_says_how_to_get_them(tiny_clip):
    with pytest.raises(EmbedderError, match=r"random weights are never used.*image\.clip_checkpoint"):
        OpenClipEmbedder(TINY, None, device="cpu")


def test_open_clip_tag_not_in_cache_raises_when_downloads_are_off(tmp_path):
    settings = ImageSettings(embedder="open_clip", device="cpu")
    with pytest.raises(EmbedderError, match=r"not in the local cache.*set image\.clip_checkpoint to a local"):
        make_image_embedder(settings, allow_download=False, cache_dir=tmp_path)


def test_open_clip_missing_checkpoint_file_is_named(tmp_path):
    settings = ImageSettings(embedder="auto", clip_checkpoint=str(tmp_path / "nope.pt"), device="cpu")
    with pytest.raises(EmbedderError, match=r"clip_checkpoint .*nope\.pt does not exist"):
        make_image_embedder(settings, allow_download=False, cache_dir=tmp_path)


def test_checkpoint_file_loads_the_saved_weights(tiny_clip, photo_files, tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    torch.save(tiny_clip.model.state_dict(), checkpoint)
    settings = ImageSettings(embedder="auto", clip_model=TINY, clip_checkpoint=str(checkpoint), device="cpu")
    loaded = make_image_embedder(settings, allow_download=False, cache_dir=tmp_path)
    assert isinstance(loaded, OpenClipEmbedder)
    assert loaded.id.startswith(f"open_clip:{TINY}:file-")
    np.testing.assert_allclose(loaded.embed(photo_files), tiny_clip.embed(photo_files), atol=1e-5)


def test_cached_clip_weights_finds_a_file_in_the_hugging_face_cache_without_network(tmp_path):
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    assert cached_clip_weights("ViT-B-32", "laion2b_s34b_b79k", tmp_path) is None
    (snapshot / "open_clip_model.safetensors").write_bytes(b"weights")
    found = cached_clip_weights("ViT-B-32", "laion2b_s34b_b79k", tmp_path)
    assert found == str(snapshot / "open_clip_model.safetensors")


def test_auto_falls_back_to_efficientnet_with_one_loud_warning(tmp_path, caplog):
    settings = ImageSettings(embedder="auto", device="cpu")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        embedder = make_image_embedder(settings, allow_download=False, cache_dir=tmp_path)
    assert isinstance(embedder, EfficientNetEmbedder)
    ours = [w for w in caught if "instead of CLIP" in str(w.message)]
    assert len(ours) == 1
    assert "efficientnet:lite0:imagenet" in str(ours[0].message)
    assert "image.clip_checkpoint" in str(ours[0].message)
    assert caplog.text.count("instead of CLIP") == 1


def test_auto_never_builds_random_clip_weights(tmp_path):
    settings = ImageSettings(embedder="auto", clip_pretrained=None, device="cpu")
    with pytest.warns(UserWarning, match="clip_pretrained is null"):
        embedder = make_image_embedder(settings, allow_download=False, cache_dir=tmp_path)
    assert embedder.id == "efficientnet:lite0:imagenet"


def test_unknown_pretrained_tag_lists_the_known_ones():
    with pytest.raises(EmbedderError,
                       match=r"not a pretrained tag of ViT-B-32; known tags: .*laion2b_s34b_b79k"):
        OpenClipEmbedder("ViT-B-32", "no-such-tag", device="cpu")


# ------------------------------------------------------------------------------------------ EfficientNet


def test_efficientnet_weights_are_the_real_imagenet_ones(efficientnet):
    from torchvision.models import EfficientNet_B0_Weights

    categories = EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]
    logits = efficientnet.imagenet_logits([_photo("chelsea"), _photo("coffee")])
    cat_top, coffee_top = logits.argmax(axis=1)
    assert 281 <= cat_top <= 285, f"chelsea (a tabby cat) classified as {categories[cat_top]}"
    assert categories[coffee_top] == "espresso", f"coffee classified as {categories[coffee_top]}"


def test_efficientnet_gives_unit_1280_d_rows(efficientnet, photo_files):
    vectors = efficientnet.embed(photo_files)
    assert efficientnet.id == "efficientnet:lite0:imagenet"
    assert vectors.shape == (4, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_efficientnet_preprocessing_by_lookup_equals_torchvisions_bit_for_bit(efficientnet):
    """`LookupPreprocess` reads ToTensor + Normalize from a table; the pixels must be torchvision's exactly,
    or every model's vectors would move."""
    from torchvision import transforms

    reference = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(efficientnet.mean, efficientnet.std)])
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, size=(300, 451, 3), dtype=np.uint8))  # every level, anywhere
    for image in [_photo(name) for name in ("chelsea", "coffee", "astronaut")] + [noise]:
        ours = efficientnet.preprocess(image)
        assert ours.dtype == torch.float32 and ours.shape == (3, 224, 224)
        assert torch.equal(ours, reference(image))


def test_make_image_embedder_builds_efficientnet_when_asked():
    embedder = make_image_embedder(ImageSettings(embedder="efficientnet", device="cpu", batch_size=5))
    assert isinstance(embedder, EfficientNetEmbedder) and embedder.batch_size == 5


# ------------------------------------------------------------------------------------------ open_image


def test_open_image_rejects_a_text_file_named_jpg(tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_text("not really a photo")
    with pytest.raises(DataError,
                       match=r"holiday\.jpg: not a readable image; expected one of JPEG, PNG, WEBP"):
        open_image(path)


def test_open_image_rejects_a_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(_jpeg(_photo("chelsea"))[:5000])
    with pytest.raises(DataError, match=r"cut\.jpg: image is truncated or corrupt"):
        open_image(path)


def test_open_image_rejects_a_png_bomb_before_decoding_it(tmp_path):
    buffer = io.BytesIO()
    Image.new("1", (3000, 2000)).save(buffer, format="PNG")  # 6 Mpx of zeros in a few KB
    assert len(buffer.getvalue()) < 50_000
    with pytest.raises(DataError,
                       match=r"upload\.png: image is 3000x2000 = 6,000,000 pixels, over the limit"):
        open_image(buffer.getvalue(), max_pixels=1_000_000, name="upload.png")


def test_open_image_turns_pils_own_bomb_error_into_a_data_error(monkeypatch):
    buffer = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buffer, format="PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"draft: image is a decompression bomb"):
        open_image(buffer.getvalue(), max_pixels=10**9, name="draft")


def test_open_image_names_a_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"absent\.jpg: image file cannot be read"):
        open_image(tmp_path / "absent.jpg")


def test_open_image_applies_exif_rotation_and_flattens_transparency_on_white():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rotated = open_image(_jpeg(Image.new("RGB", (200, 100), (200, 30, 30)), exif=exif.tobytes()))
    assert rotated.size == (100, 200) and rotated.mode == "RGB"

    buffer = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(buffer, format="PNG")
    flattened = open_image(buffer.getvalue())
    assert flattened.getpixel((5, 5)) == (255, 255, 255)


def test_open_image_reads_webp():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(buffer, format="WEBP", lossless=True)
    image = open_image(buffer.getvalue())
    assert image.size == (40, 30) and image.getpixel((3, 3)) == (10, 200, 10)


def _png(image: Image.Image, **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(65000, 1), (1, 65000), (2100, 100)])
def test_open_image_refuses_a_strip_thinner_than_1_to_20_from_its_header(size, monkeypatch):
    """A 65000 x 1 PNG is 270 bytes, but the embedders'
    shortest-side resize would make it 14,560,000 x 224."""
    strip = _png(Image.new("L", size, 128))
    assert len(strip) < 1000
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels decoded"))
    with pytest.raises(DataError, match=rf"draft photo.*{size[0]}x{size[1]}, more elongated than 20:1"):
        open_image(strip, name="draft photo")


def test_open_image_keeps_a_20_to_1_panorama_and_its_embedding_costs_a_bounded_resize(efficientnet):
    image = open_image(_jpeg(Image.new("RGB", (2000, 100), (30, 120, 200))))
    assert image.size == (2000, 100)
    assert efficientnet.preprocess(image).shape == (3, 224, 224)


def test_exif_rotation_of_a_thin_photo_is_applied_and_the_strip_limit_holds_either_way():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    upright = open_image(_jpeg(Image.new("RGB", (400, 20), (200, 30, 30)), exif=exif.tobytes()))
    assert upright.size == (20, 400)
    with pytest.raises(DataError, match="more elongated than 20:1"):
        open_image(_jpeg(Image.new("RGB", (2000, 20), (200, 30, 30)), exif=exif.tobytes()))


def test_an_image_built_in_memory_is_bounded_like_a_decoded_one(efficientnet):
    with pytest.raises(DataError, match="image 0.*more elongated than 20:1"):
        efficientnet.embed([Image.new("RGB", (30000, 1))])


def test_sixteen_bit_greyscale_png_is_scaled_to_eight_bits_not_clipped_to_white():
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    image = open_image(_png(Image.fromarray(ramp)))
    pixels = np.asarray(image)
    assert image.mode == "RGB" and pixels[0, 0, 0] == 0 and pixels[-1, -1, 0] == 255
    assert abs(pixels.mean() - 127.5) < 1


def test_cmyk_jpeg_palette_with_transparency_and_animations_become_rgb():
    cmyk = open_image(_jpeg(Image.new("CMYK", (32, 32), (0, 255, 255, 0))))  # cyan-free, magenta+yellow = red
    assert cmyk.mode == "RGB" and cmyk.getpixel((5, 5))[0] > 240 and cmyk.getpixel((5, 5))[1] < 15

    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    palette.paste(0, (0, 0, 16, 32))  # the left half uses the transparent index
    flattened = open_image(_png(palette, transparency=0))
    assert flattened.getpixel((4, 4)) == (255, 255, 255) and flattened.getpixel((28, 4)) == (10, 200, 10)

    frames = [Image.new("RGB", (32, 32), colour) for colour in ((250, 0, 0), (0, 0, 250))]
    for fmt in ("WEBP", "PNG"):
        buffer = io.BytesIO()
        frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], lossless=True)
        first = open_image(buffer.getvalue())
        assert first.size == (32, 32) and first.getpixel((5, 5))[0] > 240, fmt


def test_open_image_refuses_gif_naming_the_formats_it_reads():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    with pytest.raises(DataError, match="expected one of JPEG, PNG, WEBP"):
        open_image(buffer.getvalue())


# ------------------------------------------------------------------------------------------ JPEG fast path


@pytest.mark.parametrize("which", ["tiny_clip", "efficientnet"])
def test_jpeg_fast_path_on_cpu_matches_the_pil_path(which, request, photo_files):
    embedder = request.getfixturevalue(which)
    jpegs = [path.read_bytes() for path in photo_files]
    fast = embed_jpeg_bytes(jpegs, embedder, device="cpu", batch_size=3)
    reference = embedder.embed(photo_files)
    cosine = (fast * reference).sum(axis=1)
    assert cosine.min() > 0.99, cosine


def test_jpeg_fast_path_respects_exif_orientation(efficientnet):
    upright = _photo("chelsea")
    exif = Image.Exif()
    exif[0x0112] = 8  # stored rotated; a viewer turns it back
    stored = _jpeg(upright.transpose(Image.Transpose.ROTATE_270), exif=exif.tobytes())
    fast = embed_jpeg_bytes([stored], efficientnet, device="cpu")
    reference = efficientnet.embed([_jpeg(upright)])
    assert float((fast * reference).sum()) > 0.99


def test_jpeg_fast_path_gives_nan_row_for_a_broken_jpeg(efficientnet, photo_files, caplog):
    jpegs = [photo_files[0].read_bytes(), b"\xff\xd8 broken", photo_files[1].read_bytes()]
    with caplog.at_level(logging.WARNING, logger="engage.embed.image"):
        vectors = embed_jpeg_bytes(jpegs, efficientnet, device="cpu")
    assert np.isnan(vectors[1]).all() and not np.isnan(vectors[[0, 2]]).any()
    assert list(efficientnet.last_failures) == ["image 1"]
    assert "image 1: not a decodable JPEG" in caplog.text


def test_jpeg_fast_path_refuses_a_thin_strip_from_its_header_before_decoding(efficientnet, photo_files):
    strip = _jpeg(Image.new("RGB", (4000, 10), (90, 90, 90)))
    vectors = embed_jpeg_bytes([strip, photo_files[0].read_bytes()], efficientnet, device="cpu")
    assert np.isnan(vectors[0]).all() and not np.isnan(vectors[1]).any()
    assert "more elongated than 20:1" in efficientnet.last_failures["image 0"]


def test_jpeg_fast_path_refuses_a_cuda_device_that_is_not_there(efficientnet):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path only exists without it")
    with pytest.raises(EmbedderError, match=r"no CUDA device is available"):
        embed_jpeg_bytes([b""], efficientnet, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for nvJPEG and bf16")
def test_jpeg_fast_path_on_cuda_matches_the_cpu_path(photo_files):
    jpegs = [path.read_bytes() for path in photo_files]
    cpu = embed_jpeg_bytes(jpegs, EfficientNetEmbedder(device="cpu"), device="cpu")
    gpu = embed_jpeg_bytes(jpegs, EfficientNetEmbedder(device="cuda"), device="cuda")
    assert (cpu * gpu).sum(axis=1).min() > 0.98  # bf16 and nvJPEG's IDCT differ slightly
