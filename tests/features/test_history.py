"""History-consistency features on constructed accounts: values, no leakage, one code path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engage.data.schema import typed_posts, validate_posts
from engage.errors import DataError
from engage.features.history import HISTORY_COLUMNS, history_features, post_id_order

START = pd.Timestamp("2024-03-04T09:00:00Z")  # a Monday


def make_posts(rows: list[dict]) -> pd.DataFrame:
    """Canonical posts from short dicts: account, day offset (float days), likes, caption, ..."""
    frame = pd.DataFrame([
        {
            "account": row.get("account", "anna"),
            "post_id": row.get("post_id", f"p{i}"),
            "posted_at": (START + pd.Timedelta(days=row["day"])).isoformat(),
            "caption": row.get("caption", "a caption"),
            "likes": row.get("likes", 10),
            "comments": row.get("comments"),
            "followers": row.get("followers"),
            "sponsored": row.get("sponsored"),
        }
        for i, row in enumerate(rows)
    ])
    return validate_posts(frame, file="<test>")


def unit(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def random_table(seed: int = 0, n: int = 300, accounts: int = 7, dim: int = 16):
    rng = np.random.default_rng(seed)
    rows = [
        {
            "account": f"acct{rng.integers(accounts)}",
            "day": float(rng.integers(0, 40 * 24)) / 24,  # hourly grid: plenty of same-instant ties
            "likes": int(rng.integers(0, 5000)),
            "comments": None if rng.random() < 0.2 else int(rng.integers(0, 300)),
            "followers": None if rng.random() < 0.5 else int(rng.integers(100, 90_000)),
            "sponsored": None if rng.random() < 0.3 else bool(rng.random() < 0.3),
            "caption": " ".join(["word"] * int(rng.integers(0, 30)) + ["#tag"] * int(rng.integers(0, 8))),
        }
        for _ in range(n)
    ]
    posts = make_posts(rows)
    image = unit(rng.normal(size=(n, dim)))
    image[rng.random(n) < 0.1] = np.nan
    caption = unit(rng.normal(size=(n, dim + 3)))
    return posts, image, caption


def test_returns_history_columns_indexed_by_the_requested_rows():
    posts = make_posts([{"day": 0}, {"day": 1}, {"day": 2}])
    frame = history_features(posts, None, None, rows=[2, 0])
    assert list(frame.columns) == HISTORY_COLUMNS
    assert list(frame.index) == [2, 0]
    assert frame["n_earlier_posts"].tolist() == [2.0, 0.0]
    assert frame["image_feed_similarity"].isna().all()  # no embeddings given


def test_a_post_like_the_feed_scores_about_one_and_an_off_style_post_lower():
    feed = np.array([1.0, 0.0, 0.0, 0.0])
    image = unit([feed, feed, feed, feed, [0.0, 1.0, 0.0, 0.0]])
    caption = unit([[0, 1, 1], [0, 1, 1], [0, 1, 1], [0, 1, 1], [1, 0, 0]])
    posts = make_posts([{"day": d} for d in range(5)])
    frame = history_features(posts, image, caption)
    assert frame.loc[3, "image_feed_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert frame.loc[3, "image_feed_max_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert frame.loc[3, "caption_feed_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert frame.loc[4, "image_feed_similarity"] == pytest.approx(0.0, abs=1e-6)
    assert frame.loc[4, "caption_feed_max_similarity"] == pytest.approx(0.0, abs=1e-6)


def test_feed_similarity_uses_the_centroid_and_skips_posts_without_an_image():
    image = unit([[1, 0], [0, 1], [1, 1]]).astype(np.float32)
    image = np.vstack([image[:2], [[np.nan, np.nan]], image[2:]])
    posts = make_posts([{"day": d} for d in range(4)])
    frame = history_features(posts, image, None)
    # Centroid of (1,0) and (0,1) is the direction (1,1): cosine 1; best single match is 1/sqrt(2).
    assert frame.loc[3, "image_feed_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert frame.loc[3, "image_feed_max_similarity"] == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert np.isnan(frame.loc[2, "image_feed_similarity"])  # its own image is missing
    assert np.isnan(frame.loc[0, "image_feed_similarity"])  # nothing earlier


def test_thirty_hashtags_against_a_habit_of_three_scores_above_two():
    habit = "morning light #one #two #three"
    outlier = "morning light " + " ".join(f"#t{i}" for i in range(30))
    posts = make_posts([{"day": d, "caption": habit} for d in range(8)] + [{"day": 8, "caption": outlier}])
    frame = history_features(posts, None, None)
    assert frame.loc[8, "hashtags_z"] == pytest.approx((30 - 3) / 1.0)  # std 0 is floored at 1
    assert frame.loc[8, "hashtags_z"] > 2
    assert frame.loc[7, "hashtags_z"] == 0.0
    assert frame.loc[8, "caption_chars_z"] > 2


def test_z_scores_need_two_earlier_posts():
    posts = make_posts([{"day": 0, "caption": "#a"}, {"day": 1, "caption": "#a #b"},
                        {"day": 2, "caption": "#a #b #c #d"}])
    frame = history_features(posts, None, None)
    assert np.isnan(frame.loc[0, "hashtags_z"]) and np.isnan(frame.loc[1, "hashtags_z"])
    # earlier counts 1 and 2: mean 1.5, sample std 0.707 floored to 1
    assert frame.loc[2, "hashtags_z"] == pytest.approx(2.5)


def test_trailing_baseline_is_the_mean_log_likes_of_the_last_n_earlier_posts():
    likes = [5, 100, 40, 900, 7, 0, 33]
    posts = make_posts([{"day": d, "likes": value} for d, value in enumerate(likes)])
    frame = history_features(posts, None, None, n_last=4)
    assert frame.loc[6, "likes_baseline"] == pytest.approx(np.mean(np.log1p([40, 900, 7, 0])))
    assert frame.loc[2, "likes_baseline"] == pytest.approx(np.mean(np.log1p([5, 100])))
    # Trend: recent half (7, 0) minus older half (40, 900).
    expected = np.mean(np.log1p([7, 0])) - np.mean(np.log1p([40, 900]))
    assert frame.loc[6, "likes_trend"] == pytest.approx(expected)
    # With 3 earlier posts the older half is the first one, the recent half the other two.
    expected = np.mean(np.log1p([100, 40])) - np.log1p(5)
    assert frame.loc[3, "likes_trend"] == pytest.approx(expected)


def test_comments_baseline_ignores_unknown_comments():
    posts = make_posts([
        {"day": 0, "comments": 9}, {"day": 1, "comments": None}, {"day": 2, "comments": 3},
        {"day": 3, "comments": 50},
    ])
    frame = history_features(posts, None, None)
    assert frame.loc[3, "comments_baseline"] == pytest.approx(np.mean(np.log1p([9, 3])))
    assert np.isnan(frame.loc[1, "comments_trend"])


def test_each_insight_count_has_its_trailing_level_over_the_posts_that_have_it():
    posts = make_posts([{"day": d} for d in range(4)])
    posts["saves"] = pd.array([4, None, 19, 2], dtype="Int64")
    frame = history_features(posts, None, None, n_last=3)
    assert frame.loc[3, "saves_baseline"] == pytest.approx(np.mean(np.log1p([4, 19])))
    assert np.isnan(frame.loc[0, "saves_baseline"]) and frame["reach_baseline"].isna().all()


def test_first_post_of_an_account_has_nan_history_and_zero_earlier_posts():
    posts = make_posts([{"day": 3, "account": "new", "followers": 1200}, {"day": 1, "account": "old"},
                        {"day": 2, "account": "old"}])
    emb = unit(np.ones((3, 4)))
    frame = history_features(posts, emb, emb)
    first = frame.loc[0]
    assert first["n_earlier_posts"] == 0
    for column in ("image_feed_similarity", "caption_feed_max_similarity", "hashtags_z", "caption_chars_z",
            "days_since_previous", "likes_baseline", "comments_baseline", "likes_trend", "sponsored_share"):
        assert np.isnan(first[column]), column
    assert first["followers"] == 1200  # its own count is known at posting time
    assert frame.loc[2, "n_earlier_posts"] == 1


def test_posts_at_the_same_instant_are_ordered_by_post_id():
    # Day-precision dates: two posts on day 1. The one with the smaller post_id is the earlier, whatever
    # the table order, and its likes are the later one's latest context.
    posts = make_posts([{"day": 0, "likes": 10, "post_id": "a"}, {"day": 1, "likes": 5, "post_id": "c"},
                        {"day": 1, "likes": 1000, "post_id": "b"}])
    frame = history_features(posts, None, None)
    assert frame.loc[2, "n_earlier_posts"] == 1 and frame.loc[1, "n_earlier_posts"] == 2
    assert frame.loc[2, "likes_baseline"] == pytest.approx(np.log1p(10))
    assert frame.loc[1, "likes_baseline"] == pytest.approx(np.mean(np.log1p([10, 1000])))
    assert frame.loc[1, "likes_last_vs_baseline"] == pytest.approx(
        np.log1p(1000) - np.mean(np.log1p([10, 1000])))
    assert frame.loc[1, "days_since_previous"] == 0.0


def test_shortcodes_and_media_ids_order_posts_as_instagram_made_them():
    # Instagram's base-64 alphabet puts digits after letters: "B9" is a later shortcode than "BA", and a
    # longer one is later still; ASCII order would say the opposite for both.
    assert list(post_id_order(pd.Series(["BTdB9x", "BTdBAx", "BTdBAxA"]))) == [1, 0, 2]
    # Numeric media ids (optionally with the owner's id) compare as numbers, not as text.
    assert list(post_id_order(pd.Series(["99_5", "100_5", "1000"]))) == [0, 1, 2]
    # Anything else compares as text.
    assert list(post_id_order(pd.Series(["b c", "a", "c"]))) == [1, 0, 2]


def test_same_day_shortcodes_see_the_earlier_post_of_the_pair():
    posts = make_posts([{"day": 0, "likes": 10, "post_id": "BTdA0000000"},
                        {"day": 1, "likes": 5, "post_id": "BTd90000000"},  # later: 9 comes after A..z
                        {"day": 1, "likes": 1000, "post_id": "BTdZ0000000"}])
    frame = history_features(posts, None, None)
    assert frame.loc[2, "n_earlier_posts"] == 1 and frame.loc[1, "n_earlier_posts"] == 2


def test_momentum_features_follow_the_latest_known_counts():
    posts = make_posts([{"day": d, "likes": value} for d, value in enumerate([5, 100, 0, 40, 900, 7])])
    posts.loc[2, "likes"] = pd.NA  # a hidden like count: an earlier post, but no value
    frame = history_features(posts, None, None, n_last=12)
    seen = np.log1p([5, 100, 40, 900])  # what the last post (row 5) sees
    row = frame.loc[5]
    assert row["n_earlier_posts"] == 5 and row["likes_baseline"] == pytest.approx(seen.mean())
    assert row["likes_last_vs_baseline"] == pytest.approx(seen[-1] - seen.mean())
    assert row["likes_second_last_vs_baseline"] == pytest.approx(seen[-2] - seen.mean())
    assert row["likes_last3_vs_baseline"] == pytest.approx(seen[-3:].mean() - seen.mean())
    assert row["likes_median_vs_baseline"] == pytest.approx(np.median(seen) - seen.mean())
    assert row["likes_max_vs_baseline"] == pytest.approx(seen.max() - seen.mean())
    assert row["likes_std"] == pytest.approx(seen.std(ddof=1))
    # Right after the hidden post, the latest known is the one before it.
    assert frame.loc[3, "likes_last_vs_baseline"] == pytest.approx(np.log1p(100) - np.log1p([5, 100]).mean())
    # One known earlier post: no second-last and no spread; none: every momentum feature is NaN.
    assert np.isnan(frame.loc[1, "likes_second_last_vs_baseline"]) and np.isnan(frame.loc[1, "likes_std"])
    assert frame.loc[1, "likes_last_vs_baseline"] == 0.0
    assert frame.loc[0, ["likes_last_vs_baseline", "likes_max_vs_baseline", "likes_std"]].isna().all()


def test_timing_features():
    posts = make_posts([{"day": 0}, {"day": 2.5}])
    frame = history_features(posts, None, None)
    assert frame.loc[1, "days_since_previous"] == pytest.approx(2.5)
    assert (frame.loc[0, "hour_utc"], frame.loc[0, "weekday"]) == (9, 0)
    assert (frame.loc[1, "hour_utc"], frame.loc[1, "weekday"]) == (21, 2)


def test_posts_in_the_last_30_days_count_the_feeds_earlier_posts_of_that_window():
    posts = make_posts([{"day": 0}, {"day": 10}, {"day": 25}, {"day": 40}, {"day": 41},
                        {"day": 39, "account": "other"}])
    frame = history_features(posts, None, None)
    # day 40: days 10 (exactly 30 days before: in) and 25; day 41: 25 and 40 (day 10 is 31 days before)
    assert frame["posts_last_30_days"].tolist() == [0.0, 1.0, 2.0, 2.0, 2.0, 0.0]
    # At most the feed's n_last posts count (a draft scored with a copied feed sees only those).
    capped = history_features(posts, None, None, n_last=1)
    assert capped["posts_last_30_days"].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def test_followers_fall_back_to_the_latest_earlier_known_count():
    posts = make_posts([
        {"day": 0, "followers": 1000}, {"day": 1, "followers": 1500}, {"day": 2},
        {"day": 3, "followers": 1700},
        {"day": 4, "account": "other"},
    ])
    frame = history_features(posts, None, None)
    assert frame["followers"].tolist()[:4] == [1000, 1500, 1500, 1700]
    assert np.isnan(frame.loc[4, "followers"])


def test_sponsored_share_is_among_posts_with_known_sponsorship():
    posts = make_posts([
        {"day": 0, "sponsored": True}, {"day": 1, "sponsored": None}, {"day": 2, "sponsored": False},
        {"day": 3, "sponsored": True}, {"day": 4},
    ])
    frame = history_features(posts, None, None)
    assert frame.loc[4, "sponsored_share"] == pytest.approx(2 / 3)
    assert frame.loc[2, "sponsored_share"] == 1.0  # the unknown one is left out, not counted as False


def test_a_posts_own_likes_and_comments_never_enter_its_features():
    posts, image, caption = random_table(seed=1)
    before = history_features(posts, image, caption)
    changed = posts.copy()
    changed["likes"] = changed["likes"] * 3 + 7
    changed["comments"] = changed["comments"] + 11
    # Every row's own features are computed with only its own likes changed.
    for row in [0, 50, 299]:
        alone = posts.copy()
        alone.loc[row, ["likes", "comments"]] = changed.loc[row, ["likes", "comments"]]
        pd.testing.assert_frame_equal(history_features(alone, image, caption, rows=[row]), before.loc[[row]],
                                      check_exact=True)


@pytest.mark.parametrize("change", ["likes", "caption", "embedding", "delete"])
def test_changing_or_deleting_a_post_changes_no_feature_of_any_earlier_post(change):
    posts, image, caption = random_table(seed=2)
    before = history_features(posts, image, caption).set_axis(posts["post_id"])
    by_time = posts["posted_at"].sort_values(kind="stable").index
    for victim in by_time[[100, 200, 280]]:
        edited, edited_image, edited_caption = posts.copy(), image.copy(), caption.copy()
        if change == "likes":
            edited.loc[victim, "likes"] += 100_000
            edited.loc[victim, "comments"] = 999
        elif change == "caption":
            edited.loc[victim, "caption"] = "#x " * 40
        elif change == "embedding":
            edited_image[victim] = -edited_image[victim] if not np.isnan(edited_image[victim]).any() else 1.0
            edited_caption[victim] = -edited_caption[victim]
        else:
            keep = np.arange(len(posts)) != victim
            edited, edited_image, edited_caption = edited[keep].reset_index(drop=True), image[keep], caption[
                keep]
        after = history_features(edited, edited_image, edited_caption).set_axis(edited["post_id"])
        earlier = posts.loc[posts["posted_at"] < posts.loc[victim, "posted_at"], "post_id"]
        assert len(earlier) > 10
        pd.testing.assert_frame_equal(after.loc[earlier], before.loc[earlier], check_exact=True)
        # ...and the edit is visible to a later post of the same account, so the test can fail.
        later = posts[(posts["account"] == posts.loc[victim, "account"]) & (
            posts["posted_at"] > posts.loc[victim, "posted_at"])]
        if change != "embedding" and len(later):
            assert not after.loc[later["post_id"]].equals(before.loc[later["post_id"]])


def test_a_subset_of_rows_gives_exactly_the_full_computation():
    posts, image, caption = random_table(seed=3)
    full = history_features(posts, image, caption)
    rows = np.array([299, 0, 5, 120, 121, 77])
    pd.testing.assert_frame_equal(history_features(posts, image, caption, rows=rows), full.loc[rows],
                                  check_exact=True)


def test_table_order_does_not_matter():
    posts, image, caption = random_table(seed=4)
    full = history_features(posts, image, caption).set_axis(posts["post_id"])
    shuffle = np.random.default_rng(0).permutation(len(posts))
    shuffled = posts.iloc[shuffle].reset_index(drop=True)
    same = history_features(shuffled, image[shuffle], caption[shuffle]).set_axis(shuffled["post_id"])
    # Posts of one account at one instant are ordered by post_id, not by where they sit in the table.
    pd.testing.assert_frame_equal(same.loc[full.index], full, check_exact=True)


def test_a_draft_scored_against_stored_context_matches_training():
    posts, image, caption = random_table(seed=5)
    full = history_features(posts, image, caption)
    draft = int(posts["posted_at"].idxmax())
    account = posts.loc[draft, "account"]
    context = posts.index[(posts["account"] == account) & (posts.index != draft)]
    # the bundle keeps the last N posts
    context = posts.loc[context].sort_values("posted_at", kind="stable").index[-12:]
    rows = np.concatenate([context, [draft]])
    scored = history_features(posts.loc[rows].reset_index(drop=True), image[rows], caption[rows],
                              rows=[len(rows) - 1])
    expected = full.loc[[draft]].drop(columns="n_earlier_posts").to_numpy()
    np.testing.assert_array_equal(scored.drop(columns="n_earlier_posts").to_numpy(), expected)


def test_embeddings_must_be_aligned_with_the_posts():
    posts = make_posts([{"day": 0}, {"day": 1}])
    with pytest.raises(DataError, match=r"image_emb has shape \(3, 4\) but the posts table has 2 rows"):
        history_features(posts, np.zeros((3, 4)), None)


def test_rows_outside_the_table_are_an_error():
    posts = make_posts([{"day": 0}])
    with pytest.raises(DataError, match=r"position 5 is outside the posts table"):
        history_features(posts, None, None, rows=[5])


def test_posted_at_must_be_utc_timestamps():
    posts = make_posts([{"day": 0}])
    posts["posted_at"] = "2024-01-01"
    with pytest.raises(DataError, match="posted_at.*not a UTC timestamp"):
        history_features(posts, None, None)


def test_a_table_without_photos_gives_the_same_features_from_a_read_only_nan_view():
    from engage.features.duplicates import same_day_duplicates
    from engage.features.pipeline import _fit_pca

    posts, _, caption = random_table(seed=4, n=120)
    dense = np.full((len(posts), 1280), np.nan, dtype=np.float32)
    view = np.broadcast_to(np.full((1, 1280), np.nan, dtype=np.float32), dense.shape)  # 5 KB, read-only
    pd.testing.assert_frame_equal(history_features(posts, view, caption),
                                  history_features(posts, dense, caption))
    pd.testing.assert_frame_equal(same_day_duplicates(posts, view, caption),
                                  same_day_duplicates(posts, dense, caption))
    assert history_features(posts, view, caption)["image_feed_similarity"].isna().all()
    assert _fit_pca(view, np.arange(len(posts)), 8, 0) is None


def test_rows_of_a_photo_less_table_stay_one_row_through_take_and_concat():
    from engage.features.vectors import PostVectors, repeats_one_row

    view = np.broadcast_to(np.full((1, 1280), np.nan, dtype=np.float32), (1000, 1280))
    vectors = PostVectors(view, np.ones((1000, 4), dtype=np.float32), np.zeros((1000, 7), dtype=np.float32))
    taken = vectors.take([3, 999, 3])
    assert repeats_one_row(taken.image) and taken.image.shape == (3, 1280) and np.isnan(taken.image).all()
    joined = PostVectors.concat([taken, vectors.take([0])])
    assert repeats_one_row(joined.image) and joined.image.shape == (4, 1280)
    real = PostVectors(np.ones((1, 1280), dtype=np.float32), np.ones((1, 4), dtype=np.float32),
                       np.zeros((1, 7), dtype=np.float32))
    mixed = PostVectors.concat([taken, real])
    assert not repeats_one_row(mixed.image) and np.isnan(mixed.image[:3]).all() and (
        mixed.image[3] == 1).all()


def test_hour_and_weekday_are_those_of_the_utc_time_before_and_after_1970():
    # Computed from the nanoseconds: the same as pandas' UTC hour and weekday, also before the epoch (whose
    # day, 1970-01-01, was a Thursday) and for times given in another zone.
    stamps = ["1969-12-31T23:30:00Z", "1970-01-01T00:00:00Z", "1965-07-04T05:59:59Z",
              "2024-03-10T01:30:00-08:00",
              "2024-10-27T00:30:00+02:00", "2099-12-31T23:59:59Z"]
    n = len(stamps)
    posts = typed_posts({"account": [f"a{i}" for i in range(n)], "post_id": [f"p{i}" for i in range(n)],
        "posted_at": [pd.Timestamp(s) for s in stamps], "caption": ["c"] * n, "likes": [1] * n})
    frame = history_features(posts, None, None)
    utc = pd.to_datetime(pd.Series(stamps), utc=True)
    assert frame["hour_utc"].tolist() == utc.dt.hour.astype(float).tolist()
    assert frame["weekday"].tolist() == utc.dt.weekday.astype(float).tolist()
    assert frame.loc[0, ["hour_utc", "weekday"]].tolist() == [23.0, 2.0]  # a Wednesday


def test_post_ids_decide_only_among_posts_at_one_instant():
    # The ids are ranked only when two posts of an account share an instant; either way the order is that of
    # (account, time, post id), so a table without ties gives what ranking every id gives.
    from engage.data.schema import post_id_order
    from engage.features.history import AccountTimeline, posted_at_ns

    for ties in (False, True):
        posts, _, _ = random_table(seed=3, n=120)
        if not ties:  # every post at its own minute
            posts["posted_at"] = START + pd.to_timedelta(np.random.default_rng(1).permutation(120),
                                                         unit="min")
        timeline = AccountTimeline(posts, posted_at_ns(posts))
        codes = timeline.account_codes
        every_id = np.lexsort((np.arange(120), post_id_order(posts["post_id"]), posted_at_ns(posts), codes))
        assert np.array_equal(timeline.order, every_id)
    # Post ids in descending order at one instant: the smaller id is still the earlier post.
    posts = make_posts([{"day": 1, "post_id": "c", "likes": 5}, {"day": 1, "post_id": "b", "likes": 7}])
    assert history_features(posts, None, None)["n_earlier_posts"].tolist() == [1.0, 0.0]


def test_the_feature_table_is_one_float_block_with_the_rows_as_index():
    posts, image, caption = random_table(seed=4, n=60)
    frame = history_features(posts, image, caption, rows=[5, 2, 40])
    assert list(frame.columns) == HISTORY_COLUMNS and frame.index.tolist() == [5, 2, 40]
    assert frame.dtypes.eq(np.float64).all() and frame._mgr.nblocks == 1
    assert history_features(posts, image, caption, rows=[]).shape == (0, len(HISTORY_COLUMNS))


def test_window_vectors_gathered_at_once_give_the_slot_by_slot_values_bit_for_bit(monkeypatch):
    import engage.features.history as history

    posts, image, caption = random_table(seed=5, n=200)
    monkeypatch.setattr(history, "GATHERED_ROWS", 0)  # every block slot by slot
    slot_by_slot = history_features(posts, image, caption, n_last=9)
    monkeypatch.setattr(history, "GATHERED_ROWS", 10**9)  # every block gathered
    gathered = history_features(posts, image, caption, n_last=9)
    pd.testing.assert_frame_equal(gathered, slot_by_slot, check_exact=True)
    assert slot_by_slot["image_feed_max_similarity"].notna().sum() > 100


def test_unit_rows_are_each_row_over_its_norm_block_by_block_and_zero_where_unusable(monkeypatch):
    from engage.features import history

    monkeypatch.setattr(history, "UNIT_BLOCK_ROWS", 3)  # blocks cut between the rows
    matrix = np.array([[3, 4], [np.nan, 1], [0, 0], [1, 1], [0, 2], [6, 8], [np.inf, 0]], dtype=np.float32)
    unit, usable = history._unit_rows(matrix)
    assert usable.tolist() == [True, False, False, True, True, True, False]
    assert unit.dtype == np.float32
    expected = np.array([[0.6, 0.8], [0, 0], [0, 0], [1 / np.sqrt(2)] * 2, [0, 1], [0.6, 0.8], [0, 0]],
                        dtype=np.float32)
    np.testing.assert_array_equal(unit, expected)
