"""The demo simulator: deterministic, canonical, atomic, and carrying the effects the docs promise."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import engage.data.demo as demo
import engage.data.demo.store as store
from engage.data import load_posts
from engage.data.demo import (
    OFF_STYLE_DISTANCE,
    PERIOD_END,
    PhotoPlan,
    felt_fake_logit,
    generate_demo,
    is_current,
    load_demo,
    load_truth,
    render_photo,
)
from engage.data.schema import CANONICAL
from engage.errors import ConfigError, DataError

TINY = {"seed": 3, "n_accounts": 4, "posts_per_account": 10, "months": 3, "image_size": 96}
# Big enough for rates (about 550 posts, 100 sponsored) and still about a second to generate.
MEDIUM = {"seed": 11, "n_accounts": 12, "posts_per_account": 40, "months": 6, "image_size": 64}
DISCLOSURE_PATTERN = r"#ad\b|#paid\b|#sponsored\b|Paid partnership"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("tiny") / "demo", **TINY)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    out_dir = tmp_path_factory.mktemp("medium") / "demo"
    posts = load_demo(out_dir, **MEDIUM)
    truth = load_truth(out_dir).set_index("post_id").loc[posts["post_id"]].reset_index()
    return posts, truth


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(float)


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_tables_and_jpeg_bytes(tiny: Path, tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", **TINY)
    for name in ("posts.parquet", "truth.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tiny / name), pd.read_parquet(again / name))
    images = sorted(p.relative_to(tiny) for p in (tiny / "images").rglob("*.jpg"))
    assert len(images) == len(pd.read_parquet(tiny / "posts.parquet"))
    assert images == sorted(p.relative_to(again) for p in (again / "images").rglob("*.jpg"))
    assert all((tiny / p).read_bytes() == (again / p).read_bytes() for p in images)


def test_photos_rendered_over_several_workers_are_the_same_files(tiny: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import engage.data.demo.store as store

    # The tiny demo's ~40 photos in tasks of 8, over 2 workers.
    monkeypatch.setattr(store, "PARALLEL_PHOTOS", 1)
    monkeypatch.setattr(store, "RENDER_CHUNK", 8)
    monkeypatch.setattr(store, "_cpus", lambda: 2)
    again = generate_demo(tmp_path / "parallel", **TINY)
    images = sorted(p.relative_to(tiny) for p in (tiny / "images").rglob("*.jpg"))
    assert images == sorted(p.relative_to(again) for p in (again / "images").rglob("*.jpg"))
    assert all((tiny / p).read_bytes() == (again / p).read_bytes() for p in images)


def test_different_seed_gives_a_different_population(tiny: Path, tmp_path: Path) -> None:
    other = pd.read_parquet(generate_demo(tmp_path / "other", **{**TINY, "seed": 4}) / "posts.parquet")
    first = pd.read_parquet(tiny / "posts.parquet")
    assert set(other["account"]) != set(first["account"]) or not other["caption"].equals(first["caption"])
    assert other["likes"].tolist() != first["likes"].tolist()


# ---------------------------------------------------------------------------------------------- the table


def test_load_demo_returns_the_canonical_table_with_absolute_image_paths(tiny: Path) -> None:
    posts = load_demo(tiny, **TINY)
    assert list(posts.columns) == CANONICAL
    assert posts["posted_at"].dtype == "datetime64[ns, UTC]"
    assert posts["likes"].dtype == "Int64"  # nullable: a hidden like count is missing
    assert str(posts["followers"].dtype) == "Int64" and str(posts["comments"].dtype) == "Int64"
    assert posts["post_id"].is_unique
    assert posts["account"].nunique() == TINY["n_accounts"]
    assert posts["followers"].between(1_000, 100_000).all()
    assert (posts["likes"] >= 0).all() and (posts["comments"] >= 0).all()
    assert posts["sponsored"].notna().all() and posts["felt_fake"].notna().all()
    assert not posts["is_video"].any()
    start = PERIOD_END - pd.DateOffset(months=TINY["months"])
    assert posts["posted_at"].between(start, PERIOD_END, inclusive="left").all()
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in posts["image"])
    assert posts.attrs["report"].source == "demo" and posts.attrs["report"].rows == len(posts)


def test_load_posts_demo_source_passes_options_to_the_simulator(tiny: Path) -> None:
    posts = load_posts("demo", tiny, **TINY)
    assert posts.equals(load_demo(tiny, **TINY).sort_values(["account", "posted_at",
                                                             "post_id"]).reset_index(drop=True))


def test_default_directory_is_data_demo_under_the_working_directory(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    posts = load_demo(None, **TINY)
    assert (tmp_path / "data" / "demo" / "manifest.json").is_file()
    assert Path(posts["image"].iloc[0]).is_relative_to(tmp_path / "data" / "demo" / "images")


def test_images_are_decodable_jpegs_of_the_requested_size(tiny: Path) -> None:
    posts = load_demo(tiny, **TINY)
    for path in posts["image"]:
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.size == (TINY["image_size"], TINY["image_size"])
            image.load()


def test_followers_grow_slowly_over_the_period(medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, _ = medium
    for _, feed in posts.groupby("account"):
        followers = feed.sort_values("posted_at")["followers"].to_numpy(dtype=float)
        assert (np.diff(followers) >= 0).all()
        assert followers[-1] <= followers[0] * 1.3


def test_likes_follow_followers_and_engagement(medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, truth = medium
    rate = posts["likes"] / posts["followers"].astype(float)
    assert 0.01 < rate.median() < 0.06
    log_likes = np.log(posts["likes"].to_numpy(dtype=float) + 1)
    assert np.corrcoef(log_likes, truth["expected_log_likes"])[0, 1] > 0.9
    comments = posts["comments"].astype(float) / posts["likes"].clip(lower=1)
    assert 0.005 < comments.median() < 0.08


# ---------------------------------------------------------------------------------------------- content


def test_campaign_posts_share_photo_caption_and_day_across_accounts(
    medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, truth = medium
    campaigns = truth[truth["campaign_id"] >= 0].groupby("campaign_id")
    assert campaigns.ngroups >= 2
    for _, group in campaigns:
        rows = posts[posts["post_id"].isin(group["post_id"])]
        assert rows["account"].nunique() == len(rows) >= 2
        assert rows["caption"].nunique() == 1
        assert rows["posted_at"].dt.date.nunique() == 1
        assert rows["posted_at"].nunique() == len(rows)
        assert rows["sponsored"].all()
        assert (group["campaign_size"] == len(rows)).all()
        first, *others = [_pixels(p) for p in rows["image"]]
        assert all(np.abs(first - other).mean() < 8 for other in others)  # JPEG re-encoding only


def test_ordinary_posts_of_the_same_photo_look_different(medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, truth = medium
    ordinary = truth[(truth["campaign_id"] < 0) & (truth["careless"] == "") & ~truth["off_style"]]
    images = dict(zip(posts["post_id"], posts["image"], strict=True))
    differences = [
        np.abs(_pixels(images[a]) - _pixels(images[b])).mean()
        for _, group in ordinary.groupby(["account", "photo"])
        for a, b in itertools.combinations(group["post_id"].head(8), 2)
    ]
    assert len(differences) > 100
    assert np.median(differences) > 25
    assert np.mean(np.array(differences) < 4) < 0.01


def test_sponsored_posts_carry_disclosure_tags_and_brand_messaging(
    medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, truth = medium
    sponsored = posts[posts["sponsored"].astype(bool)]
    assert 0.1 < len(sponsored) / len(posts) < 0.3
    disclosed = sponsored["caption"].str.contains(DISCLOSURE_PATTERN)
    assert 0.5 < disclosed.mean() < 0.95  # some sponsored posts are not disclosed
    for tag in ("#ad", "#paid", "#sponsored", "Paid partnership"):
        assert sponsored["caption"].str.contains(tag, regex=False).any(), tag
    assert not posts.loc[~posts["sponsored"].astype(bool), "caption"].str.contains(DISCLOSURE_PATTERN).any()
    assert sponsored["caption"].str.contains("Shop now|Link in bio|Use code|Limited offer").any()
    coded = truth[truth["discount_code"] != ""]
    assert all(code in caption for code,
               caption in zip(coded["discount_code"], posts.loc[coded.index, "caption"], strict=True))


def test_hashtag_habits_are_a_few_with_some_overloaded_posts(
    medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, truth = medium
    counts = posts["caption"].str.count(r"#\w+")
    assert (counts == truth["n_hashtags"]).all()
    assert counts.max() <= 30
    assert 2 <= counts.median() <= 8
    assert 0 < (counts >= 18).mean() < 0.15


def test_off_style_posts_are_flagged_and_look_unlike_their_feed(
    medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, truth = medium
    assert 0.05 < truth["off_style"].mean() < 0.25
    assert (truth["off_style"] == (truth["style_distance"] > OFF_STYLE_DISTANCE)).all()
    own = truth[(truth["campaign_id"] < 0) & (truth["careless"] == "")]
    colour = np.array([_pixels(p).reshape(-1, 3).mean(axis=0) for p in posts.loc[own.index, "image"]])
    far = {True: [], False: []}
    for account in own["account"].unique():
        mine = (own["account"] == account).to_numpy()
        on = mine & ~own["off_style"].to_numpy()
        centre = np.median(colour[on], axis=0)
        for i in np.flatnonzero(mine):
            far[bool(own["off_style"].iloc[i])].append(np.linalg.norm(colour[i] - centre))
    assert np.mean(far[True]) > 1.5 * np.mean(far[False])


def test_careless_shots_have_lower_image_quality(medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    _, truth = medium
    careless = truth["careless"] != ""
    assert careless.any()
    assert (truth.loc[careless, "image_quality"] < 0.8).all()
    assert (truth.loc[~careless, "image_quality"] == 1.0).all()


def test_render_photo_applies_blur_exposure_and_overlay() -> None:
    plan = PhotoPlan(photo="coffee", center=(0.5, 0.5), zoom=1.5, flip=False, look=demo.GRADES["natural"])
    sharp = _pixels_of(render_photo(plan, 128))
    blurred = _pixels_of(render_photo(PhotoPlan(**{**plan.__dict__, "blur": 4.0}), 128))
    dark = _pixels_of(render_photo(PhotoPlan(**{**plan.__dict__, "exposure": 0.4}), 128))
    marked = _pixels_of(render_photo(PhotoPlan(**{**plan.__dict__, "overlay": "SAVE20"}), 128))
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.6 * np.abs(np.diff(sharp, axis=1)).mean()
    assert dark.mean() < 0.5 * sharp.mean()
    changed = np.abs(marked - sharp).sum(axis=2) > 30
    assert changed[64:].mean() > changed[:64].mean()  # the banner sits at the bottom


def _pixels_of(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(float)


def test_mono_look_removes_colour_and_warm_look_adds_red() -> None:
    plan = PhotoPlan(photo="coffee", center=(0.5, 0.5), zoom=1.5, flip=False, look=demo.GRADES["natural"])
    natural = _pixels_of(render_photo(plan, 64))
    mono = _pixels_of(render_photo(PhotoPlan(**{**plan.__dict__, "look": demo.GRADES["mono"]}), 64))
    cool = _pixels_of(render_photo(PhotoPlan(**{**plan.__dict__, "look": demo.GRADES["cool"]}), 64))
    assert np.abs(mono[..., 0] - mono[..., 2]).max() <= 1
    assert (natural[..., 0] - natural[..., 2]).mean() > (cool[..., 0] - cool[..., 2]).mean() + 10


# ---------------------------------------------------------------------------------------------- felt_fake


def test_felt_fake_cues_rank_as_in_the_literature() -> None:
    def single(cue: str) -> float:
        cues = {"off_style": False, "disclosure": "", "same_day_duplicate": False, "brand_messaging": False}
        cues.update({"disclosure": "#paid"} if cue == "paid" else {"disclosure": "#ad"} if cue == "ad"
                    else {cue: True})
        return felt_fake_logit(sponsored=True, **cues)

    ranked = [single(c) for c in ("off_style", "paid", "same_day_duplicate", "ad")]
    assert ranked == sorted(ranked, reverse=True)
    assert single("ad") == pytest.approx(single("brand_messaging"))
    plain = {"off_style": False, "disclosure": "", "same_day_duplicate": False, "brand_messaging": False}
    assert felt_fake_logit(sponsored=True, **plain) > felt_fake_logit(sponsored=False, **plain)


def test_felt_fake_is_more_common_on_sponsored_posts_tagged_paid(
    medium: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    posts, truth = medium
    sponsored = posts["sponsored"].astype(bool)
    paid = posts["caption"].str.contains("#paid", regex=False)
    felt = posts["felt_fake"].astype(bool)
    assert (sponsored & paid).sum() >= 10
    assert felt[sponsored & paid].mean() > felt[sponsored & ~paid].mean()
    assert truth.loc[sponsored & paid, "felt_fake_probability"].mean() > truth.loc[
        sponsored & ~paid, "felt_fake_probability"].mean()
    assert felt[sponsored].mean() > 5 * felt[~sponsored].mean()
    assert 0.0 < felt[~sponsored].mean() < 0.06


# ---------------------------------------------------------------------------------------------- the directory


def test_population_is_reused_when_options_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    write = store._write_population
    monkeypatch.setattr(store, "_write_population", lambda out, options, progress: (
        calls.append(options), write(out, options, progress)))
    load_demo(tmp_path / "demo", **TINY)
    stamp = (tmp_path / "demo" / "posts.parquet").stat().st_mtime_ns
    again = load_demo(tmp_path / "demo", **TINY)
    assert len(calls) == 1
    assert (tmp_path / "demo" / "posts.parquet").stat().st_mtime_ns == stamp
    assert len(again) > 0


def test_population_is_regenerated_when_options_change(tmp_path: Path) -> None:
    first = load_demo(tmp_path / "demo", **TINY)
    second = load_demo(tmp_path / "demo", **{**TINY, "seed": 5, "image_size": 64})
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert manifest["options"]["seed"] == 5 and manifest["options"]["image_size"] == 64
    assert not first["likes"].equals(second["likes"])
    with Image.open(second["image"].iloc[0]) as image:
        assert image.size == (64, 64)
    assert not is_current(tmp_path / "demo", **TINY)


def test_population_with_a_missing_image_is_regenerated(tmp_path: Path) -> None:
    posts = load_demo(tmp_path / "demo", **TINY)
    Path(posts["image"].iloc[3]).unlink()
    assert not is_current(tmp_path / "demo", **TINY)
    again = load_demo(tmp_path / "demo", **TINY)
    assert Path(again["image"].iloc[3]).is_file()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftover_temporary_directory_from_a_killed_run_is_not_trusted(tmp_path: Path) -> None:
    out_dir = tmp_path / "demo"
    leftover = tmp_path / f".demo.tmp-{_dead_pid()}-abc123"
    (leftover / "images").mkdir(parents=True)
    (leftover / "manifest.json").write_text(json.dumps(store._manifest(store._validated(TINY), 1, 1)))
    pd.DataFrame({"account": ["half"], "post_id": ["x"], "posted_at": ["2024-01-01"],
                  "likes": [1]}).to_parquet(
        leftover / "posts.parquet")
    posts = load_demo(out_dir, **TINY)
    assert "half" not in set(posts["account"])
    assert len(posts) > 10 and is_current(out_dir, **TINY)
    assert not leftover.exists()


def test_interrupted_generation_leaves_nothing_that_is_trusted(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = []

    def render_then_die(plan: PhotoPlan, size: int) -> Image.Image:
        rendered.append(plan)
        if len(rendered) > 5:
            raise KeyboardInterrupt
        return render_photo(plan, size)

    monkeypatch.setattr(store, "render_photo", render_then_die)
    with pytest.raises(KeyboardInterrupt):
        load_demo(tmp_path / "demo", **TINY)
    assert not (tmp_path / "demo").exists()
    assert [p.name for p in tmp_path.iterdir()] == []
    monkeypatch.setattr(store, "render_photo", render_photo)
    assert len(load_demo(tmp_path / "demo", **TINY)) > 10


def test_refuses_to_replace_a_directory_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"mine.*not a demo population.*notes\.txt"):
        load_demo(tmp_path / "mine", **TINY)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_invalid_options_raise_a_config_error_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.demo\.n_accounts"):
        load_demo(tmp_path / "demo", **{**TINY, "n_accounts": 1})
    with pytest.raises(ConfigError, match=r"data\.demo\.image_size"):
        generate_demo(tmp_path / "demo", **{**TINY, "image_size": 8})
    assert not (tmp_path / "demo").exists()


def test_load_truth_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"truth\.parquet.*generate the demo population"):
        load_truth(tmp_path)


def test_generation_does_not_touch_global_random_state(tmp_path: Path) -> None:
    np.random.seed(0)
    expected = np.random.random()
    np.random.seed(0)
    generate_demo(tmp_path / "demo", **{**TINY, "n_accounts": 2})
    assert np.random.random() == expected
    assert os.listdir(tmp_path) == ["demo"]


def test_generating_the_demo_without_progress_prints_no_bar(tmp_path: Path, capsys) -> None:
    from engage.data import load_posts

    load_posts("demo", tmp_path / "quiet", progress=False, **TINY)
    assert "demo posts" not in capsys.readouterr().err
    load_posts("demo", tmp_path / "shown", **TINY)
    assert "demo posts" in capsys.readouterr().err
