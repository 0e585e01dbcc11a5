"""Files that fight back: every user file engage parses is bounded (engage/bounded.py).

Each case is a finding of issue 22 (docs/security.md): before the change a 480 KB `.json.xz` of 3 GB of spaces
cost 27 s and 6.4 GB before it was skipped, a `.json` link to /dev/zero was read without end, a deeply nested
file raised RecursionError out of the whole load, and a photo linked from elsewhere reached the bundle's feed.
"""

from __future__ import annotations

import json
import lzma
import os
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from engage.data.insights import load_insights
from engage.data.instaloader import load_dump
from engage.data.table import read_table
from engage.embed.decoding import open_image
from engage.errors import DataError
from engage.model.feed import account_feeds

FIXTURES = Path(__file__).parent / "fixtures"
BOMB = FIXTURES / "spaces-3gb.json.xz"  # 468,672 bytes that decompress to 3 GiB of spaces
#: engage.bounded.MAX_DECODED_BYTES (imported in the tests that need the module, so that the others also run,
#: and fail, on the code from before issue 22)
MAX_DECODED_BYTES = 64 * 1024 * 1024


def post(shortcode: str, when: int = 1_690_000_000, likes: int = 10, owner: str = "anna.bakes") -> dict:
    return {"node": {"shortcode": shortcode, "taken_at_timestamp": when,
                     "edge_media_preview_like": {"count": likes},
                     "edge_media_to_comment": {"count": 1}, "owner": {"username": owner}},
            "instaloader": {"node_type": "Post"}}


def dump(root: Path, n: int = 2) -> Path:
    folder = root / "dump" / "anna.bakes"
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"2023-07-0{i + 1}_12-00-00_UTC.json").write_text(
            json.dumps(post(f"P{i}", 1_690_000_000 + i)))
    return folder


def skipped(posts: pd.DataFrame) -> dict[str, str]:
    return {Path(file).name: reason for file, reason in posts.attrs["report"].skipped_files}


def test_the_bomb_fixture_is_what_the_finding_describes() -> None:
    assert BOMB.stat().st_size < 500_000
    with lzma.open(BOMB) as handle:
        assert handle.read(1000) == b" " * 1000


def test_a_json_xz_of_3_gb_of_spaces_is_skipped_by_name_within_bounded_memory(tmp_path: Path) -> None:
    folder = dump(tmp_path)
    (folder / "2023-07-09_12-00-00_UTC.json.xz").write_bytes(BOMB.read_bytes())
    tracemalloc.start()
    try:
        posts = load_dump(folder.parent, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(posts) == 2
    assert "decompresses to over 67,108,864 bytes" in skipped(posts)["2023-07-09_12-00-00_UTC.json.xz"]
    assert peak < 3 * MAX_DECODED_BYTES  # the limit and its copy, never the 3 GiB the file declares


def test_a_link_to_dev_zero_is_skipped_by_name_not_read(tmp_path: Path) -> None:
    folder = dump(tmp_path)
    os.symlink("/dev/zero", folder / "2023-07-09_12-00-00_UTC.json")
    posts = load_dump(folder.parent, progress=False)
    assert len(posts) == 2
    assert "is not a regular file" in skipped(posts)["2023-07-09_12-00-00_UTC.json"]


def test_a_fifo_in_the_dump_is_skipped_without_waiting_for_a_writer(tmp_path: Path) -> None:
    folder = dump(tmp_path)
    os.mkfifo(folder / "2023-07-09_12-00-00_UTC.json")
    posts = load_dump(folder.parent, progress=False)
    assert "is not a regular file" in skipped(posts)["2023-07-09_12-00-00_UTC.json"]


def test_a_link_to_a_file_outside_the_dump_is_skipped_and_named(tmp_path: Path) -> None:
    folder = dump(tmp_path)
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps(post("SECRET", owner="someone.else")))
    os.symlink(outside, folder / "2023-07-09_12-00-00_UTC.json")
    posts = load_dump(folder.parent, progress=False)
    assert "SECRET" not in set(posts["post_id"])
    assert "outside the folder being read" in skipped(posts)["2023-07-09_12-00-00_UTC.json"]


def test_a_link_inside_the_dump_is_read_as_before(tmp_path: Path) -> None:
    folder = dump(tmp_path)
    (folder / "spare").mkdir()
    (folder / "spare" / "x.txt").write_text(json.dumps(post("INSIDE", 1_690_000_100)))
    os.symlink(folder / "spare" / "x.txt", folder / "2023-07-09_12-00-00_UTC.json")
    assert "INSIDE" in set(load_dump(folder.parent, progress=False)["post_id"])


@pytest.mark.parametrize("body", [b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
                         ids=["lists", "objects"])
def test_a_deeply_nested_file_is_skipped_like_any_broken_file(tmp_path: Path, body: bytes) -> None:
    folder = dump(tmp_path)
    (folder / "2023-07-09_12-00-00_UTC.json").write_bytes(body)
    posts = load_dump(folder.parent, progress=False)  # before: RecursionError out of the whole load
    assert len(posts) == 2
    assert "levels deep, over the limit of 100" in skipped(posts)["2023-07-09_12-00-00_UTC.json"]


def test_a_number_of_a_million_digits_is_skipped_like_any_broken_file(tmp_path: Path) -> None:
    folder = dump(tmp_path)
    (folder / "2023-07-09_12-00-00_UTC.json").write_bytes(
        b'{"node": {"shortcode": ' + b"9" * 1_000_000 + b"}}")
    posts = load_dump(folder.parent, progress=False)
    assert "cannot be decoded (ValueError" in skipped(posts)["2023-07-09_12-00-00_UTC.json"]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    from engage.bounded import MAX_DECODED_BYTES as limit
    from engage.bounded import json_depth

    assert limit == MAX_DECODED_BYTES
    assert json_depth(b'{"a": "[[[[{{{{", "b": [1, {"c": "\\"]]]"}]}') == 3


def test_a_photo_linked_from_elsewhere_never_reaches_the_posts_or_the_feed(tmp_path: Path) -> None:
    from PIL import Image

    folder = dump(tmp_path, n=2)
    private = tmp_path / "private.jpg"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(private)
    os.symlink(private, folder / "2023-07-01_12-00-00_UTC.jpg")
    Image.new("RGB", (64, 64), (30, 200, 30)).save(folder / "2023-07-02_12-00-00_UTC.jpg")
    posts = load_dump(folder.parent, progress=False)
    images = [p for p in posts["image"] if isinstance(p, str)]
    assert images == [str(folder.resolve() / "2023-07-02_12-00-00_UTC.jpg")]
    assert "outside the folder being read" in skipped(posts)["2023-07-01_12-00-00_UTC.jpg"]
    assert len(account_feeds(posts)["anna.bakes"]) == 1  # only the dump's own photo becomes a thumbnail


def test_a_dump_of_many_tiny_files_and_one_bomb_loads_in_bounded_memory(tmp_path: Path) -> None:
    folder = tmp_path / "dump" / "many"
    folder.mkdir(parents=True)
    for i in range(2_000):
        (folder / f"tiny-{i:05d}.json").write_text(json.dumps(post(f"T{i}", 1_690_000_000 + i, owner="many")))
    (folder / "zz-bomb.json.xz").write_bytes(BOMB.read_bytes())
    tracemalloc.start()
    try:
        posts = load_dump(folder.parent, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(posts) == 2_000 and list(skipped(posts)) == ["zz-bomb.json.xz"]
    assert peak < 3 * MAX_DECODED_BYTES + 64 * 1024 * 1024


def test_graph_api_folder_skips_a_bomb_and_a_nesting_bomb_by_name_and_loads_the_rest(tmp_path: Path) -> None:
    folder = tmp_path / "graph"
    folder.mkdir()
    page = {"data": [{"id": "1789", "timestamp": "2024-05-01T10:00:00+0000", "like_count": 12,
                      "comments_count": 1,
                      "caption": "hi", "username": "anna.bakes"}]}
    (folder / "media.json").write_text(json.dumps(page))
    (folder / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    os.symlink("/dev/zero", folder / "zero.json")
    posts = load_insights(folder)
    assert list(posts["post_id"]) == ["1789"]
    reasons = skipped(posts)
    assert "levels deep" in reasons["deep.json"] and "not a regular file" in reasons["zero.json"]


def test_reading_json_out_of_its_folder_is_refused(tmp_path: Path) -> None:
    from engage.bounded import read_json_bounded

    (tmp_path / "inside").mkdir()
    (tmp_path / "outside.json").write_text("{}")
    os.symlink(tmp_path / "outside.json", tmp_path / "inside" / "x.json")
    with pytest.raises(DataError,
                       match=r"x\.json: is a link to .*outside\.json, outside the folder being read"):
        read_json_bounded(tmp_path / "inside" / "x.json", root=tmp_path / "inside")


def test_a_photo_path_to_dev_zero_is_refused_not_read(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "photo.jpg")
    with pytest.raises(DataError, match=r"photo\.jpg: image file is not a regular file"):
        open_image(tmp_path / "photo.jpg")


def test_a_table_that_is_a_device_is_refused_not_read(tmp_path: Path) -> None:
    # Already refused before issue 22 (read_table checks is_file); kept so that it stays so.
    os.symlink("/dev/zero", tmp_path / "posts.csv")
    with pytest.raises(DataError,
                       match=r"posts\.csv: (does not exist or is not a file|is not a regular file)"):
        read_table(tmp_path / "posts.csv")


def test_a_parquet_table_that_decompresses_past_the_limit_is_refused_from_its_footer(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    import engage.bounded as bounded

    # ~2 MB, compresses
    pd.DataFrame({"caption": [f"{i:06d}" + "x" * 1000 for i in range(2000)]}).to_parquet(
        tmp_path / "posts.parquet")
    assert (tmp_path / "posts.parquet").stat().st_size < 200_000  # 2 MB of text, compressed
    monkeypatch.setattr(bounded, "MAX_TABLE_BYTES", 1_000_000)
    with pytest.raises(DataError,
                       match=r"posts\.parquet: decompresses to [\d,]+ bytes, over the limit of 1,000,000"):
        bounded.check_table_file(tmp_path / "posts.parquet", max_bytes=bounded.MAX_TABLE_BYTES)
