"""Writes the small Instaloader dump under tests/data/fixtures/instaloader/ (committed; rerun after edits).

The files mimic what `instaloader profile NAME` and `instaloader "#hashtag"` write: post metadata as
`{date_utc}_UTC.json.xz` (compact JSON, as Instaloader compresses it) or `.json` (indented, as with
--no-compress-json), images next to them, profile metadata `NAME_ID.json.xz`, comments files, an `id` file.

    python tests/data/make_instaloader_fixture.py

What it covers (asserted in test_instaloader.py):
  anna.bakes/   GraphQL nodes; profile metadata with edge_followed_by; a sponsored carousel (_1/_2.jpg) as
                plain JSON; a video whose media expired (no image); one post saved as both .json (older
                snapshot) and .json.xz (newer); a comments file, a caption .txt and a profile picture;
                a post whose owner hid its likes (count -1) and one whose comment count is hidden (-1);
                an invalid JSON file (cut off mid-object) and an empty one.
  ben.runs/     iPhone-API nodes: nested under iphone_struct (Instaloader >= 4.9) and bare; a video with
                only an .mp4; a carousel whose first item is a video; profile metadata with `followers`;
                a story item (not a post); a post with like_and_view_counts_disabled (like_count 0); a
                truncated .json.xz (an interrupted download) and a wrapper whose node is missing.
  #streetfood/  a hashtag folder with several owners: one with its follower count in the owner node, one
                without, one known only by owner id (ben.runs, through ben's profile file), and an older
                snapshot of anna's sponsored carousel.
"""

from __future__ import annotations

import json
import lzma
import shutil
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

FIXTURE = Path(__file__).parent / "fixtures" / "instaloader"
VERSION = {"version": "4.13.1"}


def epoch(stem: str) -> int:
    """'2023-05-01_18-30-00_UTC' -> epoch seconds, the way Instaloader names files by date_utc."""
    return int(datetime.strptime(stem, "%Y-%m-%d_%H-%M-%S_UTC").replace(tzinfo=UTC).timestamp())


def write_json(path: Path, node: object, node_type: str | None = "Post") -> None:
    data = {"node": node, "instaloader": {**VERSION, "node_type": node_type}} if node_type else node
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".xz"):
        # As Instaloader's save_structure_to_file: compact JSON, xz without an integrity check.
        path.write_bytes(lzma.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"),
                                       check=lzma.CHECK_NONE))
    else:
        path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jpeg(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path, format="JPEG", quality=60)


def graphql_post(stem: str, shortcode: str, media_id: str, owner: dict, *, likes: int | None,
                 comments: int | None,
                 caption: str | None, typename: str = "GraphImage", **extra: object) -> dict:
    node: dict = {
        "__typename": typename,
        "id": media_id,
        "shortcode": shortcode,
        "taken_at_timestamp": epoch(stem),
        "is_video": typename == "GraphVideo",
        "display_url": f"https://scontent.example/{shortcode}.jpg",
        "edge_media_to_caption": {"edges": [{"node": {"text": caption}}] if caption is not None else []},
        "owner": owner,
        "comments_disabled": False,
    }
    if likes is not None:
        node["edge_media_preview_like"] = {"count": likes, "edges": []}
    if comments is not None:
        node["edge_media_to_comment"] = {"count": comments}
    node.update(extra)
    return node


def iphone_struct(stem: str, code: str, pk: str, user: dict, *, likes: int, comments: int,
                  caption: str | None,
                  media_type: int, **extra: object) -> dict:
    return {
        "pk": pk,
        "id": f"{pk}_{user['pk']}",
        "code": code,
        "taken_at": epoch(stem),
        "media_type": media_type,
        "like_count": likes,
        "comment_count": comments,
        "caption": None if caption is None else {"text": caption, "pk": "1" + pk[1:]},
        "has_liked": False,
        "user": user,
        **extra,
    }


def build(root: Path = FIXTURE) -> None:
    if root.exists():
        shutil.rmtree(root)

    # --- anna.bakes: GraphQL nodes -----------------------------------------------------------------------
    anna = root / "anna.bakes"
    anna_owner = {"id": "1001", "username": "anna.bakes"}
    write_json(anna / "anna.bakes_1001.json.xz", {
        "id": "1001", "username": "anna.bakes", "full_name": "Anna Bakes", "is_private": False,
        "edge_followed_by": {"count": 1520}, "edge_follow": {"count": 310}, "biography": "Bread and cake",
    }, node_type="Profile")
    (anna / "id").write_text("1001\n")
    write_jpeg(anna / "2023-01-15_08-00-00_UTC_profile_pic.jpg", (240, 200, 200))

    stem = "2023-05-01_18-30-00_UTC"
    write_json(anna / f"{stem}.json.xz", graphql_post(
        stem, "CrAnna00001", "3080000000000000001", anna_owner, likes=120, comments=8,
        caption="Sourdough, day 3 #baking", edge_media_to_sponsor_user={"edges": []},
    ))
    write_jpeg(anna / f"{stem}.jpg", (200, 160, 100))
    (anna / f"{stem}.txt").write_text("Sourdough, day 3 #baking\n")
    write_json(anna / f"{stem}_comments.json", [
        {"id": "17900000000000001", "created_at": epoch(stem) + 600, "text": "Looks great!",
         "owner": {"id": "9", "username": "fan.one"}, "likes_count": 1, "answers": []},
    ], node_type=None)

    stem = "2023-05-03_09-00-00_UTC"  # sponsored carousel, saved with --no-compress-json
    write_json(anna / f"{stem}.json", graphql_post(
        stem, "CrAnna00002", "3080000000000000002", anna_owner, likes=340, comments=None,
        caption="Thanks @flourco for the flour! #ad", typename="GraphSidecar",
        edge_media_to_parent_comment={"count": 21},
        edge_media_to_sponsor_user={"edges": [{"node": {"sponsor": {"id": "77", "username": "flourco"}}}]},
        is_paid_partnership=True,
        edge_sidecar_to_children={"edges": [
            {"node": {"is_video": False, "display_url": "https://scontent.example/a1.jpg"}},
            {"node": {"is_video": False, "display_url": "https://scontent.example/a2.jpg"}},
        ]},
    ))
    write_jpeg(anna / f"{stem}_1.jpg", (230, 210, 150))
    write_jpeg(anna / f"{stem}_2.jpg", (180, 140, 90))

    stem = "2023-05-07_20-15-00_UTC"  # a video whose media expired: no .mp4, no thumbnail
    video = graphql_post(stem, "CrAnna00003", "3080000000000000003", anna_owner, likes=None, comments=4,
                         caption=None, typename="GraphVideo", video_view_count=1800)
    video["edge_liked_by"] = {"count": 95}
    write_json(anna / f"{stem}.json.xz", video)

    stem = "2023-05-10_12-00-00_UTC"  # one post, two snapshots: .json first, .json.xz on a later run
    write_json(anna / f"{stem}.json", graphql_post(
        stem, "CrAnna00004", "3080000000000000004", anna_owner, likes=60, comments=2, caption="Lemon tart"))
    write_json(anna / f"{stem}.json.xz", graphql_post(
        stem, "CrAnna00004", "3080000000000000004", anna_owner, likes=75, comments=3, caption="Lemon tart"))
    write_jpeg(anna / f"{stem}.jpg", (250, 230, 120))

    stem = "2023-05-12_10-00-00_UTC"  # the owner hid the like count: Instagram writes -1
    write_json(anna / f"{stem}.json.xz", graphql_post(
        stem, "CrAnna00005", "3080000000000000005", anna_owner, likes=-1, comments=6, caption="Rye loaf"))
    write_jpeg(anna / f"{stem}.jpg", (160, 120, 80))
    stem = "2023-05-13_10-00-00_UTC"  # likes known, the comment count hidden (-1)
    write_json(anna / f"{stem}.json.xz", graphql_post(
        stem, "CrAnna00006", "3080000000000000006", anna_owner, likes=88, comments=-1, caption="Scones"))
    (anna / "2023-05-14_09-00-00_UTC.json").write_text('{"node": {"shortcode": "CrAnna00007", "taken_at_',
                                                       encoding="utf-8")
    (anna / "2023-05-15_09-00-00_UTC.json").write_bytes(b"")

    # --- ben.runs: iPhone-API nodes ----------------------------------------------------------------------
    ben = root / "ben.runs"
    ben_user = {"pk": "2002", "username": "ben.runs", "full_name": "Ben Runs", "is_private": False,
                "profile_pic_url": "https://scontent.example/ben.jpg"}
    write_json(ben / "ben.runs_2002.json", {"id": "2002", "username": "ben.runs", "followers": 860},
               node_type="Profile")

    stem = "2023-06-02_07-45-00_UTC"  # as Post.from_iphone_struct saves it: flat fields + iphone_struct
    struct = iphone_struct(stem, "CsBen000001", "3100000000000000001", ben_user, likes=210, comments=17,
                           caption="Morning 10k", media_type=1, is_paid_partnership=False)
    write_json(ben / f"{stem}.json.xz", {
        "shortcode": "CsBen000001", "id": "3100000000000000001", "__typename": "GraphImage",
        "is_video": False,
        "date": epoch(stem), "caption": "Morning 10k", "title": None, "viewer_has_liked": False,
        "edge_media_preview_like": {"count": 210}, "display_url": "https://scontent.example/b1.jpg",
        "owner": {"id": "2002", "username": "ben.runs", "is_private": False, "full_name": "Ben Runs",
                  "iphone_struct": ben_user},
        "iphone_struct": struct,
    })
    write_jpeg(ben / f"{stem}.jpg", (90, 140, 200))

    stem = "2023-06-05_19-00-00_UTC"  # a bare iPhone media item: a video with only its .mp4
    write_json(ben / f"{stem}.json", iphone_struct(
        stem, "CsBen000002", "3100000000000000002", {**ben_user, "follower_count": 870}, likes=48, comments=5,
        caption=None, media_type=2, video_duration=12.5,
    ))
    (ben / f"{stem}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")

    stem = "2023-06-09_17-20-00_UTC"  # carousel whose first item is a video: the first image is _2.jpg
    struct = iphone_struct(stem, "CsBen000003", "3100000000000000003", ben_user, likes=133, comments=9,
                           caption=None, media_type=8)
    write_json(ben / f"{stem}.json.xz", {"iphone_struct": struct, "comments": 9, "caption": None,
                                          "date": epoch(stem)})
    (ben / f"{stem}_1.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")
    write_jpeg(ben / f"{stem}_2.jpg", (60, 120, 90))

    stem = "2023-06-10_06-00-00_UTC"  # a story item saved next to the posts (--stories): not a post
    write_json(ben / f"{stem}.json.xz", {
        "__typename": "GraphStoryImage", "id": "3100000000000000099", "taken_at_timestamp": epoch(stem),
        "owner": {"id": "2002", "username": "ben.runs"}, "is_video": False,
    }, node_type="StoryItem")

    stem = "2023-06-12_08-00-00_UTC"  # newer iPhone node: counts disabled, like_count 0 means "hidden"
    write_json(ben / f"{stem}.json.xz", {"iphone_struct": iphone_struct(
        stem, "CsBen000005", "3100000000000000005", ben_user, likes=0, comments=3, caption="Hill repeats",
        media_type=1, like_and_view_counts_disabled=True), "date": epoch(stem)})
    stem = "2023-06-14_07-00-00_UTC"  # an interrupted download: the .json.xz is cut in half
    write_json(ben / f"{stem}.json.xz", {"iphone_struct": iphone_struct(
        stem, "CsBen000006", "3100000000000000006", ben_user, likes=12, comments=1, caption="Rest day",
        media_type=1), "date": epoch(stem)})
    whole = (ben / f"{stem}.json.xz").read_bytes()
    (ben / f"{stem}.json.xz").write_bytes(whole[: len(whole) // 2])
    # Instaloader's wrapper without the post node (a writer that died between the two).
    write_json(ben / "2023-06-15_07-00-00_UTC.json.xz", {"instaloader": {**VERSION, "node_type": "Post"}},
               node_type=None)

    # --- #streetfood: a hashtag folder holding several accounts' posts ----------------------------------
    tag = root / "#streetfood"
    stem = "2023-07-01_12-00-00_UTC"
    write_json(tag / f"{stem}.json.xz", graphql_post(
        stem, "CtCarla0001", "3200000000000000001",
        {"id": "3003", "username": "carla.eats", "edge_followed_by": {"count": 4300}},
        likes=512, comments=40, caption="Tacos al pastor #streetfood"))
    write_jpeg(tag / f"{stem}.jpg", (210, 90, 60))

    stem = "2023-07-02_19-10-00_UTC"  # picture not downloaded
    write_json(tag / f"{stem}.json", graphql_post(
        stem, "CtDan000001", "3200000000000000002", {"id": "4004", "username": "dan.cooks"},
        likes=33, comments=1, caption="Late night noodles"))

    stem = "2023-07-03_08-00-00_UTC"  # owner known only by id: ben.runs (from ben.runs_2002.json)
    write_json(tag / f"{stem}.json.xz", graphql_post(
        stem, "CtBen000004", "3200000000000000003", {"id": "2002"},
        likes=77, comments=6, caption="Post-run churros #streetfood"))
    write_jpeg(tag / f"{stem}.jpg", (220, 170, 80))

    stem = "2023-05-03_09-00-00_UTC"  # an older snapshot of anna's sponsored carousel
    write_json(tag / f"{stem}.json.xz", graphql_post(
        stem, "CrAnna00002", "3080000000000000002", anna_owner, likes=300, comments=None,
        caption="Thanks @flourco for the flour! #ad", typename="GraphSidecar",
        edge_media_to_parent_comment={"count": 18},
        edge_media_to_sponsor_user={"edges": [{"node": {"sponsor": {"id": "77", "username": "flourco"}}}]},
    ))


if __name__ == "__main__":
    build()
    files = [p for p in FIXTURE.rglob("*") if p.is_file()]
    print(f"wrote {len(files)} files, {sum(p.stat().st_size for p in files)} bytes under {FIXTURE}")
