"""History-consistency features: how a post compares with the same account's earlier posts.

Every feature of a post is computed only from the account's posts before it, and from at most the
last `n_last` of those (the "feed"), except `n_earlier_posts`, which counts them all. "Before" is the
order (posted_at, post_id): posts of one account at the very same instant (tables with day-precision
dates hold many: two posts on one day) are ordered by post_id, as Instagram's shortcodes and media ids
grow with time. Treating them as "not earlier" than each other threw away the most recent and most
telling post of a same-day pair (on large_accounts_16536, 43% of posts share their day with another;
see docs/results.md). The post's own likes and comments never enter its features, and a later post
(or a change to it) can never change an earlier post's features.

One code path serves training and scoring: `rows` names the positions to compute; every other row is
context. Training computes all rows; scoring appends the draft to the account's stored posts and
computes the draft's row only.

How it stays fast: the table is sorted once by (account, posted_at); for each row, the start and end
of its window of earlier posts are found with array arithmetic, the window values are gathered into an
(rows, n_last) matrix and reduced with NaN-aware numpy reductions. Every value depends only on the
window's own elements, gathered in time order, so a row's features are bit-for-bit the same whatever
other rows the table holds (100k posts take well under a second without embeddings; see
docs/performance.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engage.data.schema import INSIGHT_COUNTS, post_id_order
from engage.errors import DataError
from engage.features.caption import hashtag_counts

#: A floor on the spread of an account's earlier hashtag counts: with habits of 3, 3, 3 a post with 4
#: hashtags is z=1, not infinity.
HASHTAG_STD_FLOOR = 1.0
#: The same for caption length, in characters (about four words).
CAPTION_CHARS_STD_FLOOR = 25.0
NS_PER_HOUR = 3_600 * 10**9
NS_PER_DAY = 24 * NS_PER_HOUR
#: The window of `posts_last_30_days`, the account's posting rate.
RECENT_DAYS = 30
#: Up to this many rows (a scored draft's), the window vectors are gathered in one pass, not slot by slot.
GATHERED_ROWS = 64
#: Rows per block when comparing embeddings with their windows (bounds memory to a few block * dim floats).
EMBEDDING_BLOCK_ROWS = 8192
#: Rows per block when scaling embeddings to unit length (bounds the temporaries to a few MB).
UNIT_BLOCK_ROWS = 16_384

MOMENTUM_COLUMNS: list[str] = [
    "likes_last_vs_baseline",  # log1p(likes) of the latest feed post with known likes, minus likes_baseline
    "likes_second_last_vs_baseline",  # the one before it, the same way
    "likes_last3_vs_baseline",  # mean of the latest three known, minus the baseline
    "likes_median_vs_baseline",  # median of the feed's known likes, minus the baseline (skew)
    "likes_max_vs_baseline",  # the feed's best post, minus the baseline (how high a hit goes)
    "likes_std",  # sample std of the feed's known log1p(likes) (NaN under 2): how steady the account is
]

HISTORY_COLUMNS: list[str] = [
    "image_feed_similarity",  # cosine of the image to the centroid of the feed's images (NaN rows skipped)
    "image_feed_max_similarity",  # highest cosine of the image to any feed image
    "caption_feed_similarity",  # the same for the caption embedding
    "caption_feed_max_similarity",
    "hashtags_z",  # hashtag count as a z-score against the feed (NaN with fewer than 2 earlier posts)
    "caption_chars_z",  # caption length in characters, the same way
    "days_since_previous",  # days since the account's previous post (NaN for its first)
    "posts_last_30_days",  # the account's earlier posts in the 30 days before this one (of the feed's last n)
    "hour_utc",  # posting hour, UTC, 0..23
    "weekday",  # posting weekday, Monday=0
    "likes_baseline",  # mean log1p(likes) over the feed
    "comments_baseline",  # mean log1p(comments) over the feed's posts with known comments
    "likes_trend",  # mean log1p(likes) of the feed's recent half minus its older half
    "comments_trend",  # the same for comments (NaN unless both halves have known comments)
    # Short-term momentum of likes, each relative to the baseline (the models learn the residual over it).
    # Not for comments: on the demo their six columns added noise and no skill (docs/results.md).
    *MOMENTUM_COLUMNS,
    # the mean log1p of each insight count over the feed's posts that have it (impressions_baseline, ...):
    *(f"{count}_baseline" for count in INSIGHT_COUNTS),
    "n_earlier_posts",  # how many posts the account made before this one (all of them)
    "followers",  # the post's follower count, else the latest known in the feed
    "sponsored_share",  # share of the feed's posts with known `sponsored` that were sponsored
]

_REQUIRED = ("account", "posted_at", "caption", "likes")


def posted_at_ns(posts: pd.DataFrame, *, file: object = None) -> np.ndarray:
    """`posted_at` as int64 nanoseconds since the epoch, UTC; a `DataError` names the first bad row."""
    values = posts["posted_at"]
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise DataError(
            f"has dtype {values.dtype}, not a UTC timestamp; build "
            "the table with engage.data.schema.validate_posts",
            file=file, field="posted_at",
        )
    missing = values.isna().to_numpy()
    if missing.any():
        raise DataError("is missing; every post needs the time it was posted", file=file,
                        row=int(np.flatnonzero(missing)[0]) + 1, field="posted_at")
    return pd.DatetimeIndex(values).tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)


def check_posts(posts: pd.DataFrame, columns: tuple[str, ...], *, file: object = None) -> None:
    missing = [c for c in columns if c not in posts.columns]
    if missing:
        raise DataError(f"the posts table lacks column(s) {', '.join(missing)}; build it with validate_posts",
                        file=file)


def check_embeddings(matrix: np.ndarray | None, n: int, name: str) -> np.ndarray | None:
    """Embeddings aligned with the posts as float32 (n, dim), or None; errors say what is wrong."""
    if matrix is None:
        return None
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != n:
        raise DataError(
            f"{name} has shape {matrix.shape} but the posts table has {n} rows; embeddings must be aligned "
            "row by row with the posts (a NaN row for a post without one)",
            field=name,
        )
    return matrix


def check_rows(rows: np.ndarray | list[int] | None, n: int) -> np.ndarray:
    """Positions to compute as int64; all rows when None. Out-of-range or non-integer positions are errors."""
    if rows is None:
        return np.arange(n, dtype=np.int64)
    array = np.asarray(rows)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise DataError(
            f"rows must be a 1-d list of integer positions, got dtype {array.dtype} shape {array.shape}",
                        field="rows")
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= n)
    if bad.any():
        raise DataError(f"position {int(array[bad][0])} is outside the posts table (0..{n - 1})",
                        field="rows")
    return array


class AccountTimeline:
    """The posts sorted by (account, posted_at) and, for each post, where its earlier posts are.

    `order[k]` is the original position of the k-th post in sorted order; for original position i,
    `rank[i]` is its sorted position, `group_start[i]` the sorted position of its account's first post
    and `earlier_end[i]` one past the last post before it in (posted_at, post_id) order.
    """

    def __init__(self, posts: pd.DataFrame, times: np.ndarray):
        n = len(posts)
        self.account_codes = pd.factorize(posts["account"].astype(str), sort=False)[0].astype(np.int64)
        self.times = times
        # Posts of one account at one instant are ordered by post_id (else table order), so that which
        # of them is earlier never depends on how the table happens to be ordered. Ranking the ids is most of
        # the time of a scored draft's few rows, and without two posts of an account at one instant it
        # cannot change the order: it is ranked only when some are.
        self.order = np.lexsort((np.arange(n), times, self.account_codes))
        if "post_id" in posts.columns and _shares_an_instant(self.account_codes[self.order],
                                                             times[self.order]):
            self.order = np.lexsort((np.arange(n), post_id_order(posts["post_id"]), times,
                                     self.account_codes))
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[self.order] = np.arange(n)
        sorted_accounts = self.account_codes[self.order]
        positions = np.arange(n)
        new_account = np.ones(n, dtype=bool)
        new_account[1:] = sorted_accounts[1:] != sorted_accounts[:-1]
        group_start_sorted = np.maximum.accumulate(np.where(new_account, positions, 0)) if n else positions
        self.group_start = group_start_sorted[self.rank]
        self.earlier_end = self.rank  # every post before it in sorted order, same-instant ones by post_id

    def windows(self, rows: np.ndarray, n_last: int) -> tuple[np.ndarray, np.ndarray]:
        """(index, mask): original positions of each row's last `n_last` earlier posts, oldest first.

        index is (len(rows), n_last), left-padded with 0 where mask is False.
        """
        end = self.earlier_end[rows]
        start = np.maximum(self.group_start[rows], end - n_last)
        offsets = np.arange(n_last) - n_last  # -n_last .. -1
        sorted_pos = end[:, None] + offsets[None, :]
        mask = sorted_pos >= start[:, None]
        index = self.order[np.where(mask, sorted_pos, 0)] if len(self.order) else np.zeros_like(sorted_pos)
        return index, mask


def _shares_an_instant(sorted_accounts: np.ndarray, sorted_times: np.ndarray) -> bool:
    """Whether two neighbours of the (account, time) order have the same account and time."""
    return bool(
        ((sorted_accounts[1:] == sorted_accounts[:-1]) & (sorted_times[1:] == sorted_times[:-1])).any())


def _window_values(values: np.ndarray, index: np.ndarray, mask: np.ndarray) -> np.ndarray:
    gathered = values[index].astype(np.float64) if len(values) else np.zeros(index.shape)
    gathered[~mask] = np.nan
    return gathered


def _nanmean(matrix: np.ndarray) -> np.ndarray:
    known = ~np.isnan(matrix)
    count = known.sum(axis=1)
    total = np.where(known, matrix, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _halves_trend(matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the recent half of each window minus the mean of its older half (NaN under 2 posts).

    The window is left-padded, so a window of m posts fills the last m columns; the older half is its
    first m // 2 posts, the recent half the rest.
    """
    n_rows, width = matrix.shape
    m = mask.sum(axis=1)
    column = np.arange(width)[None, :]
    first = (width - m)[:, None]
    older = mask & (column < first + (m // 2)[:, None])
    recent = mask & ~older
    trend = _nanmean(np.where(recent, matrix, np.nan)) - _nanmean(np.where(older, matrix, np.nan))
    return np.where(m >= 2, trend, np.nan)


def _momentum(window: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """MOMENTUM_COLUMNS of each row's window of log1p counts (NaN where unknown), oldest first.

    Known values are counted from the right: `from_right[i, j]` is how many known values lie at or after
    column j, so the latest known value is where it is 1, the one before where it is 2.
    """
    known = ~np.isnan(window)
    count = known.sum(axis=1)
    from_right = np.cumsum(known[:, ::-1], axis=1)[:, ::-1]

    def nth_last(n: int) -> np.ndarray:
        pick = known & (from_right == n)
        return np.where(count >= n, np.where(pick, window, 0.0).sum(axis=1), np.nan)

    recent = np.where(known & (from_right <= 3), window, np.nan)
    filled = np.where(known, window, -np.inf)
    with np.errstate(invalid="ignore"):
        # Rows without a known value are NaN below; nanmedian's "all-NaN slice" warning says the same.
        median = np.full(len(window), np.nan)
        some = count > 0
        if some.any():
            median[some] = np.nanmedian(window[some], axis=1)
        centred = np.where(known, window - _nanmean(window)[:, None], 0.0)
        std = np.where(count >= 2, np.sqrt((centred**2).sum(axis=1) / np.maximum(count - 1, 1)), np.nan)
    best = np.where(count > 0, filled.max(axis=1), np.nan)
    return np.column_stack([nth_last(1) - baseline, nth_last(2) - baseline, _nanmean(recent) - baseline,
                            median - baseline, best - baseline, std])


def _zscore(values: np.ndarray, window: np.ndarray, floor: float) -> np.ndarray:
    count = (~np.isnan(window)).sum(axis=1)
    mean = _nanmean(window)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = np.where(np.isnan(window), 0.0, window - mean[:, None])
        std = np.sqrt((centred**2).sum(axis=1) / np.maximum(count - 1, 1))
        z = (values - mean) / np.maximum(std, floor)
    return np.where(count >= 2, z, np.nan)


def _unit_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row scaled to length 1 (float32) and whether it is usable (finite, non-zero)."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
    usable = np.isfinite(norms) & (norms > 0)
    unit = np.zeros_like(matrix, dtype=np.float32)
    # Block by block: `matrix[usable] / norms` at once made two more copies of the matrix (2 GB of caption
    # vectors at a million posts); each element is the same float32 division either way.
    for start in range(0, len(matrix), UNIT_BLOCK_ROWS):
        block = slice(start, start + UNIT_BLOCK_ROWS)
        ok = usable[block]
        scale = np.where(ok, norms[block], 1.0).astype(np.float32)
        with np.errstate(invalid="ignore"):
            unit[block] = np.where(ok[:, None], matrix[block] / scale[:, None], np.float32(0.0))
    return unit, usable


def _window_sums(unit: np.ndarray, usable: np.ndarray, own: np.ndarray, index: np.ndarray, mask: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each own row: its highest cosine to a usable window vector (-inf: none), the sum of those vectors
    (float32, added slot by slot, oldest first) and their count. One window slot at a time."""
    best = np.full(len(own), -np.inf)
    total = np.zeros_like(own)
    count = np.zeros(len(own), dtype=np.int64)
    for slot in range(index.shape[1]):
        feed_rows = index[:, slot]
        ok = mask[:, slot] & usable[feed_rows]
        if not ok.any():
            continue
        feed = unit[feed_rows]  # a copy: safe to zero the rows that are not in the window
        feed[~ok] = 0.0
        cosines = np.einsum("ij,ij->i", own, feed)
        best = np.where(ok, np.maximum(best, cosines), best)
        total += feed
        count += ok
    return best, total, count


def _window_sums_gathered(unit: np.ndarray, usable: np.ndarray, own: np.ndarray, index: np.ndarray,
                          mask: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_window_sums` with every slot gathered at once (a scored draft's row: one pass instead of one per
    slot), bit for bit: the same row-wise dot products, and the sum over slots accumulated oldest first."""
    rows, slots = index.shape
    ok = mask & usable[index]
    feeds = unit[index]  # (rows, slots, dim), a copy
    feeds[~ok] = 0.0
    cosines = np.einsum("ij,ij->i", np.repeat(own, slots, axis=0),
                        feeds.reshape(rows * slots, -1)).reshape(rows, slots)
    total = np.zeros_like(own)
    for slot in range(slots):  # float32 sums in slot order, as `_window_sums` adds them
        total += feeds[:, slot]
    best = np.where(ok, cosines, -np.inf).max(axis=1, initial=-np.inf)
    return best.astype(np.float64), total, ok.sum(axis=1)


def _embedding_similarity(
    matrix: np.ndarray | None, rows: np.ndarray, index: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each row's embedding to its window's centroid and its highest cosine to one of them.

    Works one window slot at a time over blocks of rows: each cosine is a row-wise dot product whose
    value depends only on the two embeddings involved (never on which other rows are in the block, as
    a matrix product's blocking could), so a row gives the same bits in any table.
    """
    centroid_sim = np.full(len(rows), np.nan)
    max_sim = np.full(len(rows), np.nan)
    if matrix is None or not len(rows) or not np.isfinite(matrix[:, 0]).any():
        return centroid_sim, max_sim  # no usable vector at all (a table without photos): nothing to copy
    unit, usable = _unit_rows(matrix)
    for start in range(0, len(rows), EMBEDDING_BLOCK_ROWS):
        block = slice(start, start + EMBEDDING_BLOCK_ROWS)
        own_rows = rows[block]
        own = unit[own_rows]
        if len(own_rows) <= GATHERED_ROWS:
            best, total, count = _window_sums_gathered(unit, usable, own, index[block], mask[block])
        else:
            best, total, count = _window_sums(unit, usable, own, index[block], mask[block])
        total_norm = np.sqrt(np.einsum("ij,ij->i", total, total, dtype=np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            to_centroid = np.einsum("ij,ij->i", own, total, dtype=np.float64) / total_norm
        ok = (count > 0) & usable[own_rows]
        max_sim[block] = np.where(ok, best, np.nan)
        centroid_sim[block] = np.where(ok & (total_norm > 0), to_centroid, np.nan)
    return centroid_sim, max_sim


def _nullable(posts: pd.DataFrame, column: str) -> np.ndarray:
    """A nullable column (Int64, boolean, object) as float64 with NaN for missing; absent -> all NaN."""
    if column not in posts.columns:
        return np.full(len(posts), np.nan)
    values = posts[column]
    if isinstance(values.dtype,
                  pd.BooleanDtype | pd.Int64Dtype | pd.Float64Dtype) or values.dtype.kind in "biuf":
        # The canonical table's dtypes: straight to float (a
        # tenth of the general path's time on a draft's rows).
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values, errors="raise").astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)


def history_features(
    posts: pd.DataFrame,
    image_emb: np.ndarray | None,
    caption_emb: np.ndarray | None,
    *,
    n_last: int = 12,
    rows: np.ndarray | list[int] | None = None,
) -> pd.DataFrame:
    """`HISTORY_COLUMNS` for `rows` (positions in `posts`; default all), indexed by those positions.

    `posts` is a canonical posts table in any order; `image_emb` and `caption_emb` are aligned with
    it row by row (NaN rows for posts without one; None leaves the embedding columns NaN). Each row is
    computed from its account's posts strictly before it, at most the last `n_last` of them.
    """
    if n_last < 1:
        raise DataError(f"n_last must be at least 1, got {n_last}", field="features.history_posts")
    check_posts(posts, _REQUIRED)
    posts = posts.reset_index(drop=True)
    n = len(posts)
    rows = check_rows(rows, n)
    image_emb = check_embeddings(image_emb, n, "image_emb")
    caption_emb = check_embeddings(caption_emb, n, "caption_emb")
    times = posted_at_ns(posts)
    timeline = AccountTimeline(posts, times)
    index, mask = timeline.windows(rows, n_last)

    # Columns are gathered as arrays and framed once (inserting 16 columns one by one into a DataFrame
    # was most of the time of one draft's history features).
    out: dict[str, np.ndarray] = {}
    out["image_feed_similarity"], out["image_feed_max_similarity"] = _embedding_similarity(
        image_emb, rows, index, mask)
    out["caption_feed_similarity"], out["caption_feed_max_similarity"] = _embedding_similarity(
        caption_emb, rows, index, mask
    )

    # Hashtags and length: only the rows and their windows need counting.
    needed = np.flatnonzero(np.bincount(np.concatenate([rows, index[mask]]), minlength=n))
    captions = posts["caption"].to_numpy(dtype=object)
    hashtags = np.full(n, np.nan)
    hashtags[needed] = hashtag_counts([captions[i] for i in needed])
    chars = np.full(n, np.nan)
    chars[needed] = [len(captions[i]) for i in needed]
    out["hashtags_z"] = _zscore(hashtags[rows], _window_values(hashtags, index, mask), HASHTAG_STD_FLOOR)
    out["caption_chars_z"] = _zscore(chars[rows], _window_values(chars, index, mask), CAPTION_CHARS_STD_FLOOR)

    end = timeline.earlier_end[rows]
    has_previous = end > timeline.group_start[rows]
    previous = timeline.order[np.where(has_previous, end - 1, 0)] if n else rows
    gap_ns = (times[rows] - times[previous]).astype(np.float64)
    out["days_since_previous"] = np.where(has_previous, gap_ns / 86_400e9, np.nan)
    # How often the account posts: its feed's posts in the 30 days before this one (at most the feed's
    # `n_last`, so that a draft scored with a copied feed gets the same count as the post in training).
    recent = mask & (times[index] >= (times[rows] - RECENT_DAYS * NS_PER_DAY)[:, None]) if n else mask
    out["posts_last_30_days"] = recent.sum(axis=1).astype(np.float64)
    # UTC hour and weekday from the nanoseconds (floor division: also right before 1970, a Thursday).
    days, within_day = np.divmod(times[rows], NS_PER_DAY)
    out["hour_utc"] = (within_day // NS_PER_HOUR).astype(np.float64)
    out["weekday"] = ((days + 3) % 7).astype(np.float64)

    likes = np.log1p(_nullable(posts, "likes"))
    comments = np.log1p(_nullable(posts, "comments"))
    like_window = _window_values(likes, index, mask)
    comment_window = _window_values(comments, index, mask)
    out["likes_baseline"] = _nanmean(like_window)
    out["comments_baseline"] = _nanmean(comment_window)
    out["likes_trend"] = _halves_trend(like_window, mask)
    out["comments_trend"] = _halves_trend(comment_window, mask)
    momentum = _momentum(like_window, out["likes_baseline"])  # (rows, len(MOMENTUM_COLUMNS))
    out.update({column: momentum[:, k] for k, column in enumerate(MOMENTUM_COLUMNS)})
    for count in INSIGHT_COUNTS:
        out[f"{count}_baseline"] = _nanmean(_window_values(np.log1p(_nullable(posts, count)), index, mask))
    out["n_earlier_posts"] = (end - timeline.group_start[rows]).astype(np.float64)

    followers = _nullable(posts, "followers")
    follower_window = _window_values(followers, index, mask)
    known = ~np.isnan(follower_window)
    # The latest known value in the window: the right-most known column.
    last_known = np.where(known.any(axis=1), follower_window.shape[1] - 1 - np.argmax(known[:, ::-1], axis=1),
                          0)
    latest = np.where(known.any(axis=1), follower_window[np.arange(len(rows)), last_known], np.nan)
    own_followers = followers[rows]
    out["followers"] = np.where(np.isnan(own_followers), latest, own_followers)
    out["sponsored_share"] = _nanmean(_window_values(_nullable(posts, "sponsored"), index, mask))
    # One float block (framing 30 columns one by one was a fifth of a scored draft's history time).
    table = np.column_stack([np.asarray(out[c], dtype=np.float64).reshape(-1) for c in HISTORY_COLUMNS])
    return pd.DataFrame(table, columns=HISTORY_COLUMNS, index=pd.Index(rows, name=None))
