"""Same-day duplicates: other accounts' near-duplicate images and captions in the past window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engage.data.schema import validate_posts
from engage.errors import DataError
from engage.features.duplicates import (
    DUPLICATE_COLUMNS,
    LSH_TABLES,
    lsh_bits,
    pair_recall,
    same_day_duplicates,
    sketch_cutoff,
)

START = pd.Timestamp("2024-05-01T12:00:00Z")
SERUM = "Loving this new serum so much"  # 6 words: long enough to be a caption duplicate


def make_posts(rows: list[tuple[str, float, str]]) -> pd.DataFrame:
    """(account, hours after START, caption) -> canonical posts."""
    return validate_posts(
        pd.DataFrame({
            "account": [account for account, _, _ in rows],
            "post_id": [f"p{i}" for i in range(len(rows))],
            "posted_at": [(START + pd.Timedelta(hours=hours)).isoformat() for _, hours, _ in rows],
            "caption": [caption for _, _, caption in rows],
            "likes": 1,
        }),
        file="<test>",
    )


def random_unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_three_accounts_posting_the_same_image_within_a_day_count_0_1_2_in_time_order():
    posts = make_posts([("carla", 20, "c"), ("anna", 0, "a"), ("ben", 5, "b")])
    image = np.tile(random_unit(np.random.default_rng(0), 1, 32), (3, 1))
    frame = same_day_duplicates(posts, image, None)
    assert list(frame.columns) == DUPLICATE_COLUMNS
    assert frame["duplicate_image_accounts"].tolist() == [2.0, 0.0, 1.0]


def test_a_same_account_repost_does_not_count():
    posts = make_posts([("anna", 0, "a"), ("anna", 3, "b"), ("ben", 4, "c")])
    image = np.tile(random_unit(np.random.default_rng(1), 1, 32), (3, 1))
    frame = same_day_duplicates(posts, image, None)
    # ben sees one account, not two posts
    assert frame["duplicate_image_accounts"].tolist() == [0.0, 0.0, 1.0]


def test_a_copy_thirty_hours_earlier_does_not_count():
    posts = make_posts([("anna", 0, "a"), ("ben", 30, "b"), ("carla", 24, "c")])
    image = np.tile(random_unit(np.random.default_rng(2), 1, 32), (3, 1))
    frame = same_day_duplicates(posts, image, None)
    # ben at 30 h: anna (30 h before) is out, carla (6 h before)
    # is in; carla at 24 h: anna exactly 24 h before is in.
    assert frame["duplicate_image_accounts"].tolist() == [0.0, 1.0, 1.0]
    assert same_day_duplicates(posts, image, None,
                               window_hours=31)["duplicate_image_accounts"].tolist() == [0.0, 2.0, 1.0]


def test_posts_at_the_same_instant_count_for_each_other_and_later_posts_never_count():
    posts = make_posts([("anna", 1, "a"), ("ben", 1, "b"), ("carla", 2, "c")])
    image = np.tile(random_unit(np.random.default_rng(3), 1, 32), (3, 1))
    frame = same_day_duplicates(posts, image, None)
    assert frame["duplicate_image_accounts"].tolist() == [1.0, 1.0, 2.0]


def test_different_images_do_not_count_and_a_post_without_an_image_is_nan():
    rng = np.random.default_rng(4)
    posts = make_posts([("anna", 0, "a"), ("ben", 1, "b"), ("carla", 2, "c")])
    image = random_unit(rng, 3, 64)
    image[2] = np.nan
    frame = same_day_duplicates(posts, image, None)
    assert frame["duplicate_image_accounts"].iloc[:2].tolist() == [0.0, 0.0]
    assert np.isnan(frame["duplicate_image_accounts"].iloc[2])
    assert same_day_duplicates(posts, None, None)["duplicate_image_accounts"].isna().all()


def test_near_duplicate_image_counts_at_the_threshold():
    rng = np.random.default_rng(5)
    base, noise = random_unit(rng, 2, 128)
    noise -= (noise @ base) * base  # orthogonal to base
    noise /= np.linalg.norm(noise)
    close = 0.99 * base + np.sqrt(1 - 0.99**2) * noise  # cosine 0.99 to base
    far = 0.80 * base + np.sqrt(1 - 0.80**2) * noise  # cosine 0.80 to base, 0.88 to close
    posts = make_posts([("anna", 0, "a"), ("ben", 1, "b"), ("carla", 2, "c")])
    frame = same_day_duplicates(posts, np.stack([base, close, far]), None, image_threshold=0.95)
    assert frame["duplicate_image_accounts"].tolist() == [0.0, 1.0, 0.0]


def test_same_caption_after_normalisation_counts_and_short_captions_never_do():
    posts = make_posts([
        ("anna", 0, SERUM), ("ben", 1, "  loving THIS new serum   so much "), ("carla", 2, "love it!"),
        ("dan", 3, "love it!"), ("erin", 4, ""), ("fay", 5, ""), ("gus", 6, SERUM + " today"),
    ])
    frame = same_day_duplicates(posts, None, None)
    assert frame["duplicate_caption_accounts"].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_caption_embeddings_find_reworded_captions():
    posts = make_posts([("anna", 0, SERUM), ("ben", 1, "I am loving this serum a lot"),
                        ("carla", 2, "love it")])
    caption = np.array([[1.0, 0.0, 0.0], [0.95, 0.1, 0.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    frame = same_day_duplicates(posts, None, caption, caption_threshold=0.9)
    # ben's caption is close to anna's; carla's is identical in embedding but too short to count.
    assert frame["duplicate_caption_accounts"].tolist() == [0.0, 1.0, 0.0]


def brute_force(posts: pd.DataFrame, image: np.ndarray, threshold: float, window_hours: float) -> np.ndarray:
    """Every pair compared: distinct other accounts in [t - window, t] with cosine >= threshold."""
    times = (posts["posted_at"] - START).dt.total_seconds().to_numpy()
    accounts = posts["account"].to_numpy()
    unit = image / np.linalg.norm(image, axis=1, keepdims=True)
    has_image = ~np.isnan(unit).any(axis=1)
    similar = np.nan_to_num(unit) @ np.nan_to_num(unit).T >= threshold
    in_window = (times[None, :] <= times[:, None]) & (times[None, :] >= times[:, None] - window_hours * 3600)
    match = similar & in_window & (accounts[None, :] != accounts[:, None]) & has_image[None, :]
    counts = np.array([len(set(accounts[match[i]])) for i in range(len(posts))], dtype=float)
    return np.where(has_image, counts, np.nan)


def planted_table(seed: int, n: int = 400):
    """Random posts over 10 days from 30 accounts, with groups of exact image copies and shared captions."""
    rng = np.random.default_rng(seed)
    image = random_unit(rng, n, 48)
    hours = rng.integers(0, 240, n).astype(float)
    accounts = [f"acct{a}" for a in rng.integers(0, 30, n)]
    captions = [f"my own words number {i}" for i in range(n)]
    for group in range(40):
        members = rng.choice(n, 4, replace=False)
        image[members] = image[members[0]]
        hours[members] = hours[members[0]] + rng.integers(-20, 20, 4)
        for m in members:
            captions[m] = f"shared caption for group {group}"
    image[rng.random(n) < 0.05] = np.nan
    posts = make_posts(list(zip(accounts, hours, captions, strict=True)))
    return posts, image


def test_counts_equal_a_brute_force_over_all_pairs():
    posts, image = planted_table(seed=6)
    frame = same_day_duplicates(posts, image, None)
    expected = brute_force(posts, image, 0.95, 24.0)
    np.testing.assert_array_equal(frame["duplicate_image_accounts"].to_numpy(), expected)
    assert np.nansum(expected) > 50  # the planted groups do overlap in time


@pytest.mark.parametrize("change", ["image", "caption", "delete"])
def test_changing_or_deleting_a_post_changes_no_earlier_posts_duplicates(change):
    posts, image = planted_table(seed=7)
    caption = np.random.default_rng(0).normal(size=(len(posts), 8)).astype(np.float32)
    before = same_day_duplicates(posts, image, caption).set_axis(posts["post_id"])
    by_time = posts["posted_at"].sort_values(kind="stable").index
    for victim in by_time[[150, 300]]:
        edited, edited_image, edited_caption = posts.copy(), image.copy(), caption.copy()
        if change == "image":
            edited_image[victim] = image[by_time[0]] if np.isnan(image[victim]).any() else -image[victim]
        elif change == "caption":
            edited.loc[victim, "caption"] = posts.loc[by_time[140], "caption"]
            edited_caption[victim] = caption[by_time[140]]
        else:
            keep = np.arange(len(posts)) != victim
            edited, edited_image, edited_caption = edited[keep].reset_index(drop=True), image[keep], caption[
                keep]
        after = same_day_duplicates(edited, edited_image, edited_caption).set_axis(edited["post_id"])
        earlier = posts.loc[posts["posted_at"] < posts.loc[victim, "posted_at"], "post_id"]
        pd.testing.assert_frame_equal(after.loc[earlier], before.loc[earlier], check_exact=True)


def test_a_subset_of_rows_gives_exactly_the_full_computation():
    posts, image = planted_table(seed=8)
    caption = np.random.default_rng(1).normal(size=(len(posts), 8)).astype(np.float32)
    full = same_day_duplicates(posts, image, caption)
    rows = np.array([399, 3, 0, 250, 17])
    pd.testing.assert_frame_equal(same_day_duplicates(posts, image, caption, rows=rows), full.loc[rows],
                                  check_exact=True)


def test_index_parameters_follow_the_threshold():
    assert lsh_bits(0.95) == 16 and lsh_bits(0.9) == 11
    assert pair_recall(0.95, lsh_bits(0.95)) == pytest.approx(0.96, abs=0.005)
    assert pair_recall(0.99, 16) > 0.9999
    assert pair_recall(0.5, 16) < 0.05
    assert sketch_cutoff(0.95, 256) == 65  # of 256 bits; unrelated pairs differ in about 128
    assert LSH_TABLES == 16


def test_invalid_thresholds_and_windows_are_errors():
    posts = make_posts([("anna", 0, "a")])
    with pytest.raises(DataError, match=r"field 'image_threshold': must be in \(0, 1\], got 1.5"):
        same_day_duplicates(posts, None, None, image_threshold=1.5)
    with pytest.raises(DataError, match=r"field 'window_hours': must be positive"):
        same_day_duplicates(posts, None, None, window_hours=0)


def test_an_empty_table_gives_an_empty_frame():
    posts = make_posts([("anna", 0, "a")]).iloc[:0]
    frame = same_day_duplicates(posts, np.zeros((0, 8)), None)
    assert frame.empty and list(frame.columns) == DUPLICATE_COLUMNS


def test_context_index_gives_what_same_day_duplicates_gives_a_draft_appended_to_the_context():
    from engage.features.duplicates import ContextDuplicates

    posts, image = planted_table(seed=11)
    rng = np.random.default_rng(1)
    caption = random_unit(rng, len(posts), 16)
    index = ContextDuplicates(posts, image, caption)
    with_image = np.flatnonzero(~np.isnan(image).any(axis=1))
    hours_of = ((posts["posted_at"] - START).dt.total_seconds() / 3600).to_numpy()
    group_3 = int(np.flatnonzero(posts["caption"] == "shared caption for group 3")[0])
    # (account, hours, image row to copy or None, caption text, caption vector row to copy or None)
    drafts = [
        ("newbie", hours_of[with_image[3]] + 2, int(with_image[3]), "shared caption for group 3", None),
        # exact caption, no photo
        ("newbie", hours_of[group_3] + 1, None, "shared caption for group 3", None),
        # a near copy of post 10's vector
        ("acct1", hours_of[10] + 1, None, "a caption nobody wrote before", 10),
        ("acct2", 230, None, "too short", None),  # no photo: NaN; short caption: never a duplicate
        # own posts do not count
        (str(posts["account"].iloc[20]), hours_of[20] + 3, 20, "my own words number 20", 20),
    ]
    checked = 0
    for account, hours, image_row, text, caption_row in drafts:
        draft_image = np.full(image.shape[1], np.nan,
                              np.float32) if image_row is None else image[image_row] + 1e-3
        draft_image = draft_image.astype(np.float32)
        draft_caption = random_unit(rng, 1, 16)[0] if caption_row is None else caption[caption_row] + 1e-3
        table = pd.concat([posts, make_posts([(account, hours, text)])], ignore_index=True)
        expected = same_day_duplicates(table, np.vstack([image, draft_image]),
                                       np.vstack([caption, draft_caption]),
                                       rows=[len(posts)])
        when = START + pd.Timedelta(hours=hours)
        got = index.draft(account, [when], None if image_row is None else draft_image, draft_caption, text)
        np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
        checked += int(np.nansum(expected.to_numpy()) > 0)
    assert checked >= 2  # some drafts do have duplicates


def test_context_index_counts_each_candidate_time_in_its_own_window():
    from engage.features.duplicates import ContextDuplicates

    posts = make_posts([("anna", 0, SERUM), ("ben", 10, SERUM),
                        ("carla", 30, "something else entirely here")])
    index = ContextDuplicates(posts, None, None)
    got = index.draft("dora", [START + pd.Timedelta(hours=h) for h in (5, 12, 31, 40)], None, None, SERUM)
    assert got["duplicate_caption_accounts"].tolist() == [1.0, 2.0, 1.0, 0.0]


def lsh_rule(posts: pd.DataFrame, vectors: np.ndarray, threshold: float) -> np.ndarray:
    """The documented rule, pair by pair: another account's post in [t - 24 h, t] sharing a bucket in some
    table, at most `sketch_cutoff` differing bits, exact row-wise cosine >= threshold; distinct accounts."""
    from engage.features.duplicates import _hash_codes, _unit

    unit, usable = _unit(vectors)
    bits = lsh_bits(threshold)
    codes = _hash_codes(unit, usable, bits, LSH_TABLES)
    hours = (posts["posted_at"] - START).dt.total_seconds().to_numpy() / 3600
    accounts = posts["account"].to_numpy()
    counts = []
    for q in range(len(posts)):
        in_window = (hours <= hours[q]) & (hours >= hours[q] - 24)
        p = np.flatnonzero(in_window & (accounts != accounts[q]) & usable)
        shared = (codes[:, p] == codes[:, [q]]).any(axis=0)
        differing = np.bitwise_count(codes[:, p] ^ codes[:, [q]]).sum(axis=0)
        cosines = np.einsum("ij,ij->i", unit[p], np.repeat(unit[[q]], len(p), axis=0))
        match = shared & (differing <= sketch_cutoff(threshold, bits * LSH_TABLES)) & (cosines >= threshold)
        counts.append(len(set(accounts[p[match]])))
    return np.array(counts, dtype=float)


def clustered_day_table(n: int = 500, dim: int = 96):
    """Day-precision posts (many at one instant) of 40 accounts over four days, whose vectors share one
    direction, so many pairs sit near a 0.9 threshold: the dense, clustered windows real captions make."""
    rng = np.random.default_rng(21)
    common = random_unit(rng, 1, dim)
    vectors = 0.9 * common + 0.35 * random_unit(rng, n, dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    accounts = [f"acct{a}" for a in rng.integers(0, 40, n)]
    days = rng.integers(0, 4, n) * 24.0
    posts = make_posts([(a, d, f"caption {i}") for i, (a, d) in enumerate(zip(accounts, days, strict=True))])
    return posts, vectors.astype(np.float32)


@pytest.mark.parametrize("blocks", [None, (7, 13)])
def test_dense_clustered_windows_keep_the_lsh_rule_exactly(monkeypatch, blocks):
    import engage.features.duplicates as duplicates

    if blocks is not None:  # tiny blocks: every query block and post block boundary is crossed
        monkeypatch.setattr(duplicates, "COSINE_QUERY_BLOCK", blocks[0])
        monkeypatch.setattr(duplicates, "COSINE_POST_BLOCK", blocks[1])
    posts, vectors = clustered_day_table()
    frame = same_day_duplicates(posts, vectors, None, image_threshold=0.9)
    expected = lsh_rule(posts, vectors, 0.9)
    np.testing.assert_array_equal(frame["duplicate_image_accounts"].to_numpy(), expected)
    assert expected.sum() > 1_000  # dense: many matches per window
    # and some close pairs the buckets never pair: the rule, not the plain cosine, is what is kept
    assert (brute_force(posts, vectors, 0.9, 24.0) > expected).sum() > 20


def test_bound_vectors_bound_every_cosine_from_above():
    from engage.features.duplicates import BOUND_COMPONENTS, _bound_vectors, _unit

    posts, vectors = clustered_day_table(n=300, dim=200)
    unit, _ = _unit(vectors)
    rows = np.arange(300)[::-1]
    bound = _bound_vectors(unit, rows)
    assert bound.shape == (300, BOUND_COMPONENTS + 1)
    exact = unit[rows].astype(np.float64) @ unit[rows].T.astype(np.float64)
    assert (bound.astype(np.float64) @ bound.T.astype(np.float64) >= exact - 1e-5).all()
