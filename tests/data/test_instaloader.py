"""Loading an Instaloader dump: the committed fixture (see make_instaloader_fixture.py) and broken dumps."""

from __future__ import annotations

import importlib.util
import json
import lzma
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import engage.data.instaloader as instaloader
from engage.data import load_posts
from engage.data.instaloader import load_dump
from engage.errors import DataError

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "instaloader"

_spec = importlib.util.spec_from_file_location("make_instaloader_fixture",
                                               HERE / "make_instaloader_fixture.py")
assert _spec is not None and _spec.loader is not None
fixture_maker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture_maker)

# post_id -> (account, likes, comments, followers, caption, is_video, sponsored)
EXPECTED = {
    "CrAnna00001": ("anna.bakes", 120, 8, 1520, "Sourdough, day 3 #baking", False, False),
    "CrAnna00002": ("anna.bakes", 340, 21, 1520, "Thanks @flourco for the flour! #ad", False, True),
    "CrAnna00003": ("anna.bakes", 95, 4, 1520, "", True, None),
    "CrAnna00004": ("anna.bakes", 75, 3, 1520, "Lemon tart", False, None),
    "CrAnna00005": ("anna.bakes", None, 6, 1520, "Rye loaf", False, None),  # likes hidden (-1)
    "CrAnna00006": ("anna.bakes", 88, None, 1520, "Scones", False, None),  # comments hidden (-1)
    "CsBen000001": ("ben.runs", 210, 17, 860, "Morning 10k", False, False),
    "CsBen000002": ("ben.runs", 48, 5, 870, "", True, None),
    "CsBen000003": ("ben.runs", 133, 9, 860, "", False, None),
    "CsBen000005": ("ben.runs", None, 3, 860, "Hill repeats", False, None),  # like_and_view_counts_disabled
    "CtBen000004": ("ben.runs", 77, 6, 860, "Post-run churros #streetfood", False, None),
    "CtCarla0001": ("carla.eats", 512, 40, 4300, "Tacos al pastor #streetfood", False, None),
    "CtDan000001": ("dan.cooks", 33, 1, None, "Late night noodles", False, None),
}


@pytest.fixture(scope="module")
def posts() -> pd.DataFrame:
    return load_posts("instaloader", FIXTURE)


def _row(posts: pd.DataFrame, post_id: str) -> pd.Series:
    return posts.set_index("post_id").loc[post_id]


def _na_to_none(value: object) -> object:
    return None if pd.isna(value) else value


def test_dump_gives_one_row_per_post_with_exact_fields(posts: pd.DataFrame) -> None:
    assert sorted(posts["post_id"]) == sorted(EXPECTED)
    for post_id, (account, likes, comments, followers, caption, is_video, sponsored) in EXPECTED.items():
        row = _row(posts, post_id)
        got = (row["account"], _na_to_none(row["likes"]), _na_to_none(row["comments"]),
               _na_to_none(row["followers"]),
               row["caption"], bool(row["is_video"]), _na_to_none(row["sponsored"]))
        assert got == (account, likes, comments, followers, caption, is_video, sponsored), post_id


def test_columns_have_the_canonical_types(posts: pd.DataFrame) -> None:
    assert str(posts["posted_at"].dtype) == "datetime64[ns, UTC]"
    assert str(posts["likes"].dtype) == "Int64"  # nullable: a hidden like count is missing
    assert str(posts["comments"].dtype) == "Int64"
    assert str(posts["sponsored"].dtype) == "boolean"
    assert posts["felt_fake"].isna().all()


def test_posted_at_is_the_node_timestamp_in_utc(posts: pd.DataFrame) -> None:
    # GraphQL taken_at_timestamp, the flat `date` of Instaloader >= 4.9, and a bare iPhone `taken_at`.
    assert _row(posts, "CrAnna00001")["posted_at"] == pd.Timestamp("2023-05-01 18:30:00", tz="UTC")
    assert _row(posts, "CsBen000001")["posted_at"] == pd.Timestamp("2023-06-02 07:45:00", tz="UTC")
    assert _row(posts, "CsBen000002")["posted_at"] == pd.Timestamp("2023-06-05 19:00:00", tz="UTC")


def test_image_is_the_first_image_file_of_the_post_or_none(posts: pd.DataFrame) -> None:
    root = FIXTURE.resolve()
    assert _row(posts, "CrAnna00001")["image"] == str(root / "anna.bakes" / "2023-05-01_18-30-00_UTC.jpg")
    assert _row(posts, "CrAnna00002")["image"] == str(root / "anna.bakes" / "2023-05-03_09-00-00_UTC_1.jpg")
    # carousel whose first item is a video (_1.mp4): the first image is _2.jpg
    assert _row(posts, "CsBen000003")["image"] == str(root / "ben.runs" / "2023-06-09_17-20-00_UTC_2.jpg")
    assert _row(posts, "CtCarla0001")["image"] == str(root / "#streetfood" / "2023-07-01_12-00-00_UTC.jpg")
    # expired video, video with only an .mp4, picture not downloaded: no image, and not an error
    for post_id in ("CrAnna00003", "CsBen000002", "CtDan000001"):
        assert _row(posts, post_id)["image"] is None


def test_snapshots_of_one_post_are_merged_keeping_the_highest_counts(posts: pd.DataFrame) -> None:
    # CrAnna00004 as .json (60 likes) and .json.xz (75);
    # CrAnna00002 in anna.bakes/ (340) and #streetfood/ (300)
    assert posts.attrs["report"].merged_duplicates == 2
    assert (_row(posts, "CrAnna00004")["likes"], _row(posts, "CrAnna00004")["comments"]) == (75, 3)
    assert (_row(posts, "CrAnna00002")["likes"], _row(posts, "CrAnna00002")["comments"]) == (340, 21)
    assert posts["post_id"].is_unique


def test_files_that_are_not_posts_are_skipped_and_counted(posts: pd.DataFrame) -> None:
    report = posts.attrs["report"]
    assert report.rows == 13
    assert dict(report.skipped) == {
        "profile metadata file (not a post; read for follower counts)": 2,
        "not a post: a JSON list or value, not an object (e.g. a *_comments.json file)": 1,
        "not a post: Instaloader node_type StoryItem": 1,
    }
    assert "2 duplicate snapshots merged" in report.summary()


def test_hidden_counts_are_missing_not_zero_and_counted(posts: pd.DataFrame) -> None:
    # GraphQL like count -1 (CrAnna00005), iPhone node with like_and_view_counts_disabled and like_count 0
    # (CsBen000005), GraphQL comment count -1 (CrAnna00006): missing, the rest of each post kept.
    assert pd.isna(_row(posts, "CrAnna00005")["likes"]) and _row(posts, "CrAnna00005")["comments"] == 6
    assert pd.isna(_row(posts, "CsBen000005")["likes"]) and _row(posts,
                                                                 "CsBen000005")["caption"] == "Hill repeats"
    assert _row(posts, "CrAnna00006")["likes"] == 88 and pd.isna(_row(posts, "CrAnna00006")["comments"])
    report = posts.attrs["report"]
    assert dict(report.hidden_counts) == {"likes": 2, "comments": 1}
    assert "2 posts with hidden likes counts" in report.summary()


def test_a_hidden_like_count_is_history_context_but_never_a_label(posts: pd.DataFrame) -> None:
    from engage.features.history import history_features
    from engage.model.targets import TARGETS, count_labels, risk_labels

    labels = count_labels(posts, TARGETS["likes"])
    hidden = posts.index[posts["post_id"] == "CrAnna00005"][0]
    assert np.isnan(labels[hidden]) and np.isfinite(np.delete(labels,
                                                              posts.index[posts["likes"].isna()])).all()
    features = history_features(posts, None, None, n_last=12)
    risk, _ = risk_labels(posts, features)
    assert np.isnan(risk[hidden])
    # The post after the hidden one counts it as an earlier post, but its baseline holds known likes only.
    after = posts.index[posts["post_id"] == "CrAnna00006"][0]
    assert features.loc[after, "n_earlier_posts"] == 5
    assert features.loc[after, "likes_baseline"] == pytest.approx(np.mean(np.log1p([120, 340, 95, 75])))


#: The fixture's unreadable files, in the order the loader meets them, and what their reason says.
UNREADABLE = [
    ("anna.bakes/2023-05-14_09-00-00_UTC.json", "cannot be decoded (JSONDecodeError"),  # cut off mid-object
    ("anna.bakes/2023-05-15_09-00-00_UTC.json", "cannot be decoded (JSONDecodeError"),  # empty
    ("ben.runs/2023-06-14_07-00-00_UTC.json.xz", "cannot be decoded (EOFError"),  # truncated download
    ("ben.runs/2023-06-15_07-00-00_UTC.json.xz", "wrapper but no node object"),
]


def test_each_unreadable_file_is_skipped_and_named_with_its_reason(posts: pd.DataFrame) -> None:
    skipped = posts.attrs["report"].skipped_files
    assert [Path(file).relative_to(FIXTURE.resolve()).as_posix() for file,
            _ in skipped] == [f for f, _ in UNREADABLE]
    for (_, reason), (name, expected) in zip(skipped, UNREADABLE, strict=True):
        assert expected in reason, name
    assert "4 unreadable file(s) skipped" in posts.attrs["report"].summary()
    text = posts.attrs["report"].skipped_files_text()
    assert text.count("\n") == 4 and "2023-06-15_07-00-00_UTC.json.xz: field 'node'" in text


def test_strict_refuses_the_dump_naming_the_first_unreadable_file() -> None:
    with pytest.raises(DataError, match=r"anna\.bakes/2023-05-14_09-00-00_UTC\.json: cannot be decoded"):
        load_posts("instaloader", FIXTURE, strict=True)


def test_data_strict_setting_reaches_the_loader() -> None:
    from engage.config import load_settings
    from engage.training import load_training_posts

    settings = load_settings(None, ["data.source=instaloader", f"data.path={FIXTURE}", "data.strict=true"])
    with pytest.raises(DataError, match=r"2023-05-14_09-00-00_UTC\.json: cannot be decoded"):
        load_training_posts(settings)
    assert len(load_training_posts(
        settings.model_copy(update={"data": settings.data.model_copy(update={"strict": False})}))) == 13


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xfd7zXZ\x00\x00"])
def test_one_broken_file_next_to_good_posts_is_skipped_not_fatal(tmp_path: Path, content: bytes) -> None:
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}.json", _post("Cx1"))
    broken = tmp_path / "zoe" / "2023-05-02_10-00-00_UTC.json.xz"
    broken.write_bytes(content)
    posts = load_dump(tmp_path)
    assert list(posts["post_id"]) == ["Cx1"]
    assert [file for file, _ in posts.attrs["report"].skipped_files] == [str(broken.resolve())]


def test_a_dump_whose_every_post_file_is_broken_is_an_error_naming_one(tmp_path: Path) -> None:
    (tmp_path / "zoe").mkdir()
    (tmp_path / "zoe" / f"{STEM}.json").write_text("")
    with pytest.raises(DataError, match=rf"no post \(.*{STEM}\.json: cannot be decoded"):
        load_dump(tmp_path)


def test_load_posts_sorts_by_account_then_time(posts: pd.DataFrame) -> None:
    assert list(posts["account"]) == sorted(posts["account"])
    for _, account_posts in posts.groupby("account"):
        assert account_posts["posted_at"].is_monotonic_increasing


def test_one_profile_folder_can_be_loaded_on_its_own() -> None:
    anna = load_dump(FIXTURE / "anna.bakes")
    assert sorted(anna["post_id"]) == [f"CrAnna0000{i}" for i in range(1, 7)]
    assert set(anna["followers"]) == {1520}
    assert anna.attrs["report"].merged_duplicates == 1


def test_hashtag_folder_post_known_only_by_owner_id_needs_the_profile_file() -> None:
    # Within the whole dump, owner id 2002 is ben.runs (ben.runs_2002.json); #streetfood alone cannot say.
    with pytest.raises(DataError, match=r"2023-07-03_08-00-00_UTC\.json\.xz.*owner\.username.*hashtag"):
        load_dump(FIXTURE / "#streetfood", strict=True)
    # Not strict: that one post is skipped and named; the folder's other posts load.
    tag = load_dump(FIXTURE / "#streetfood")
    assert sorted(tag["post_id"]) == ["CrAnna00002", "CtCarla0001", "CtDan000001"]
    [(file, reason)] = tag.attrs["report"].skipped_files
    assert file.endswith("2023-07-03_08-00-00_UTC.json.xz") and "owner.username" in reason


def test_committed_fixture_is_what_the_generator_writes(tmp_path: Path) -> None:
    fixture_maker.build(tmp_path / "dump")
    written = sorted(p.relative_to(tmp_path / "dump").as_posix() for p in (tmp_path / "dump").rglob("*")
                     if p.is_file())
    committed = sorted(p.relative_to(FIXTURE).as_posix() for p in FIXTURE.rglob("*") if p.is_file())
    assert written == committed
    for name in committed:
        if name.endswith((".json", ".json.xz")):
            assert _decode(tmp_path / "dump" / name) == _decode(FIXTURE / name), name
    assert sum((FIXTURE / name).stat().st_size for name in committed) < 100_000


def _decode(path: Path) -> object:
    """The JSON a file holds; the raw bytes for the fixture's deliberately broken files."""
    try:
        raw = lzma.decompress(path.read_bytes()) if path.name.endswith(".xz") else path.read_bytes()
        return json.loads(raw)
    except (lzma.LZMAError, EOFError, json.JSONDecodeError):
        return path.read_bytes()


# --- dumps built in tmp_path ---------------------------------------------------------------------------

STEM = "2023-05-01_18-30-00_UTC"


def _post(shortcode: str = "Cx1", *, owner: dict | None = None, likes: int | None = 10,
          **extra: object) -> dict:
    return fixture_maker.graphql_post(STEM, shortcode, "1", owner if owner is not None else {"id": "5"},
                                      likes=likes, comments=2, caption="hi", **extra)


def test_folder_name_is_the_account_when_the_owner_has_no_username(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "Zoe.Paints" / f"{STEM}.json.xz", _post())
    posts = load_dump(tmp_path)
    assert list(posts["account"]) == ["zoe.paints"]
    assert posts["followers"].isna().all()


def test_bare_node_without_instaloader_wrapper_is_read_by_its_shape(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}.json", _post(likes=31), node_type=None)
    posts = load_dump(tmp_path / "zoe")
    assert (posts["post_id"].iloc[0], posts["likes"].iloc[0]) == ("Cx1", 31)


def test_paid_partnership_false_is_not_sponsored_and_absent_is_unknown(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}.json", _post("Cx1", is_paid_partnership=False))
    fixture_maker.write_json(tmp_path / "zoe" / "2023-05-02_10-00-00_UTC.json", _post("Cx2"))
    posts = load_dump(tmp_path).set_index("post_id")
    assert not pd.isna(posts.loc["Cx1", "sponsored"]) and not posts.loc["Cx1", "sponsored"]
    assert pd.isna(posts.loc["Cx2", "sponsored"])


def test_merge_takes_the_image_from_another_snapshot_when_the_best_has_none(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "#a" / f"{STEM}.json", _post(owner={"username": "zoe"}, likes=50))
    fixture_maker.write_json(tmp_path / "#b" / f"{STEM}.json", _post(owner={"username": "zoe"}, likes=40))
    fixture_maker.write_jpeg(tmp_path / "#b" / f"{STEM}.jpg", (1, 2, 3))
    posts = load_dump(tmp_path)
    assert (posts["likes"].iloc[0],
            posts["image"].iloc[0]) == (50, str(tmp_path.resolve() / "#b" / f"{STEM}.jpg"))
    assert posts.attrs["report"].merged_duplicates == 1


def test_corrupt_xz_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "zoe").mkdir()
    (tmp_path / "zoe" / f"{STEM}.json.xz").write_bytes(b"this is not xz")
    with pytest.raises(DataError, match=rf"{STEM}\.json\.xz.*corrupt.*delete it"):
        load_dump(tmp_path, strict=True)


def test_truncated_xz_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}.json.xz", _post())
    data = (tmp_path / "zoe" / f"{STEM}.json.xz").read_bytes()
    (tmp_path / "zoe" / f"{STEM}.json.xz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"zoe/{STEM}\.json\.xz.*corrupt or truncated"):
        load_dump(tmp_path, strict=True)


def test_bad_json_is_an_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "zoe").mkdir()
    (tmp_path / "zoe" / f"{STEM}.json").write_text('{"node": {"shortcode": "Cx1",')
    with pytest.raises(DataError, match=rf"{STEM}\.json: cannot be decoded \(JSONDecodeError"):
        load_dump(tmp_path, strict=True)


def test_post_without_a_like_count_is_an_error_naming_file_and_field(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}.json.xz", _post(likes=None))
    with pytest.raises(DataError, match=rf"{STEM}\.json\.xz, field 'likes': the post has no like count"):
        load_dump(tmp_path, strict=True)


def test_negative_like_count_is_an_error_naming_the_json_field(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}.json", _post(likes=-3))
    with pytest.raises(DataError, match=r"field 'edge_media_preview_like\.count': '-3' is not a count"):
        load_dump(tmp_path, strict=True)


def test_declared_post_without_timestamp_is_an_error(tmp_path: Path) -> None:
    node = _post()
    del node["taken_at_timestamp"]
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}.json", node)
    with pytest.raises(DataError, match=r"field 'taken_at_timestamp': the post has no timestamp"):
        load_dump(tmp_path, strict=True)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no Instaloader metadata files.*empty"):
        load_dump(tmp_path)


def test_dump_without_metadata_json_is_an_error(tmp_path: Path) -> None:
    fixture_maker.write_jpeg(tmp_path / "zoe" / f"{STEM}.jpg", (1, 2, 3))
    with pytest.raises(DataError, match=r"no Instaloader metadata files.*--no-metadata-json"):
        load_dump(tmp_path)


def test_dump_with_only_profile_and_comments_files_is_an_error(tmp_path: Path) -> None:
    fixture_maker.write_json(tmp_path / "zoe" / "zoe_5.json.xz", {"id": "5", "username": "zoe",
        "edge_followed_by": {"count": 3}}, node_type="Profile")
    fixture_maker.write_json(tmp_path / "zoe" / f"{STEM}_comments.json", [], node_type=None)
    with pytest.raises(DataError, match=r"2 metadata file\(s\) but no post"):
        load_dump(tmp_path)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere: does not exist"):
        load_posts("instaloader", tmp_path / "nowhere")


def test_progress_bar_only_for_large_dumps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[bool] = []

    def spy(iterable, *, disable: bool, **_: object):
        shown.append(not disable)
        return iterable

    monkeypatch.setattr(instaloader, "tqdm", spy)
    load_dump(FIXTURE)
    for i in range(instaloader.PROGRESS_MIN_FILES + 1):
        fixture_maker.write_json(tmp_path / "zoe" / f"2023-05-01_18-{i // 60:02d}-{i % 60:02d}_UTC.json",
                                 _post(f"Cx{i}"))
    big = load_dump(tmp_path)
    assert len(big) == instaloader.PROGRESS_MIN_FILES + 1
    assert shown == [False, True]
