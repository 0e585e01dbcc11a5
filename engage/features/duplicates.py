"""Same-day duplicates: how many other accounts posted the same photo or caption shortly before.

Engagement pods, giveaway loops and reposting farms post the same image or caption from many accounts
within hours. For each post this module counts the OTHER accounts that posted, in the window
`[t - window, t]` (the same instant included), a near-duplicate image (cosine >= image_threshold) and
a near-duplicate caption (the same text after `normalise_caption`, or caption-embedding cosine >=
caption_threshold). Only earlier (or simultaneous) posts count: a later post never changes an earlier
post's features, the project's no-leakage rule (looking ahead would leak the future into training rows
and could never be reproduced when a draft is scored). Captions with
fewer than `MIN_CAPTION_WORDS` words ("love it", emoji only, empty) are never caption duplicates.

The index: random-hyperplane LSH. Each embedding gets `LSH_TABLES` hashes of k sign bits; two posts
are candidates when they share a hash in some table and the earlier one is inside the window; candidates
are screened by how many of all their hash bits differ (a free angle estimate that drops a pair at the
threshold with probability 1e-12) and then verified with the exact cosine, so there are no false
positives. Two vectors at
cosine c agree on one bit with probability p = 1 - arccos(c) / pi, so a pair is found with probability
1 - (1 - p**k) ** LSH_TABLES. k is chosen from the threshold so that a pair exactly AT the threshold is
found with probability `LSH_TARGET_RECALL` (k=16 at 0.95, k=11 at 0.9); pairs above it are found
more surely (0.994 at cosine 0.97, 0.99997 at 0.99).

How a table's pairs are found (`_near_pairs`): not by listing each bucket's candidates (on clustered
caption embeddings ~7% of all pairs in a window shared a bucket and ~3/4 of those passed the bit screen,
each then verified by gathering two full vectors: 80 candidates per duplicate found), but by one matrix
product per block of queries (in time order) and the posts of their window, of 65-float bound vectors
whose products bound every cosine from above; the few pairs that can reach the threshold are checked
against the rule above. Same pairs, a few multiply-adds per pair of posts in a window (issue 21: 50k
replicated posts 15 s -> 2.4 s; docs/performance.md). Scoring a draft (`ContextDuplicates`) looks up its
buckets directly.

The hyperplanes come from a fixed seed, so a post's hashes depend only on its own embedding: the same
post gets the same buckets in a training table and in a scoring context.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import binom
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from engage.errors import DataError
from engage.features.caption import normalise_caption
from engage.features.history import check_embeddings, check_posts, check_rows, posted_at_ns

DUPLICATE_COLUMNS: list[str] = [
    "duplicate_image_accounts",  # other accounts with a near-duplicate image in the window (NaN: no image)
    "duplicate_caption_accounts",  # other accounts with the same or a near-duplicate caption in the window
]

#: Hash tables per embedding: more tables, higher recall, more candidates to verify.
LSH_TABLES = 16
#: Probability of finding a pair whose cosine is exactly the threshold; sets the bits per table.
LSH_TARGET_RECALL = 0.95
#: Bounds on the bits per table (few bits make huge buckets; more than 30 are never needed).
LSH_MIN_BITS, LSH_MAX_BITS = 8, 30
#: Seed of the hyperplanes: changing it changes which borderline pairs are found.
LSH_SEED = 20240501
#: Captions with fewer words than this are never caption duplicates.
MIN_CAPTION_WORDS = 4
#: Embeddings hashed per matrix product. Fixed (the last block is zero-padded) so that every row's
#: projections come out of the same BLAS code path whatever the table size: a post's hash bits never
#: depend on which other posts are in the table.
HASH_BLOCK_ROWS = 32  # scoring pads a draft to one block: 0.4 ms (256 rows: 2.2 ms), 50k posts 10% slower
#: Chance that the bit-count screen drops a pair AT the threshold before its exact cosine is computed
#: (pairs above the threshold are dropped less often still).
SKETCH_MISS_PROBABILITY = 1e-12
#: Queries per chunk when expanding candidates, and candidate pairs per chunk when verifying them
#: (bound memory on dense buckets).
QUERY_CHUNK = 100_000
VERIFY_CHUNK = 100_000
#: Queries x posts per block of bounded cosines (float32: 32 MB): memory stays bounded in dense windows.
COSINE_QUERY_BLOCK, COSINE_POST_BLOCK = 1024, 8192
#: Components of the bound vectors (`_bound_vectors`) and the sample their basis is fitted on.
BOUND_COMPONENTS, BOUND_SAMPLE = 64, 5_000
BOUND_CHUNK = 16_384
#: Slack under the threshold for the bound's float32 rounding (about 1e-5 for unit vectors): a pair within
#: it is checked with the exact cosine like any other.
COSINE_MARGIN = 1e-3


def lsh_bits(threshold: float, tables: int = LSH_TABLES, target_recall: float = LSH_TARGET_RECALL) -> int:
    """Bits per table so that a pair at cosine `threshold` is found with probability `target_recall`."""
    p = 1.0 - math.acos(min(max(threshold, -1.0), 1.0)) / math.pi
    if p >= 1.0:
        return LSH_MAX_BITS
    per_table = 1.0 - (1.0 - target_recall) ** (1.0 / tables)
    bits = int(math.floor(math.log(per_table) / math.log(p)))
    return int(min(max(bits, LSH_MIN_BITS), LSH_MAX_BITS))


def pair_recall(cosine: float, bits: int, tables: int = LSH_TABLES) -> float:
    """Probability that the index finds a pair of embeddings at `cosine`."""
    p = 1.0 - math.acos(min(max(cosine, -1.0), 1.0)) / math.pi
    return 1.0 - (1.0 - p**bits) ** tables


def _unit(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to length 1 (float32; zero where unusable) and which rows are usable."""
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    usable = np.isfinite(norms) & (norms > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = matrix / norms[:, None]
    unit[~usable] = 0.0
    return unit.astype(np.float32, copy=False), usable


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for int64 by sorting: numpy 2.4's hash-based np.unique is ~100x slower on millions."""
    values = np.sort(values, kind="stable")
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


@functools.lru_cache(maxsize=8)
def _planes(dim: int, bits: int, tables: int) -> np.ndarray:
    """The random hyperplanes (fixed by LSH_SEED), drawn
    once per shape: scoring hashes a draft per request."""
    rng = np.random.default_rng([LSH_SEED, dim, bits, tables])
    return rng.standard_normal((dim, tables * bits)).astype(np.float32)


def _hash_codes(unit: np.ndarray, usable: np.ndarray, bits: int, tables: int) -> np.ndarray:
    """(tables, n) int64 bucket codes in [0, 2**bits); -1 for unusable rows (never hashed: a table without
    photos costs no image hashing)."""
    n, dim = unit.shape
    planes = _planes(dim, bits, tables)
    weights = 2.0 ** np.arange(bits)  # float64 sums of powers of two below 2**30 are exact
    codes = np.full((tables, n), -1, dtype=np.int64)
    hashed = np.flatnonzero(usable)
    block = np.zeros((HASH_BLOCK_ROWS, dim), dtype=np.float32)
    for start in tqdm(range(0, len(hashed), HASH_BLOCK_ROWS), desc="hashing embeddings", unit="block",
                      disable=len(hashed) < 12_800):  # a bar only where hashing takes a noticeable time
        rows = hashed[start:start + HASH_BLOCK_ROWS]
        block[: len(rows)] = unit[rows]
        block[len(rows):] = 0.0
        signs = ((block @ planes)[: len(rows)] > 0).reshape(-1, bits).astype(np.float64)
        codes[:, rows] = (signs @ weights).astype(np.int64).reshape(-1, tables).T
    return codes


class _WindowIndex:
    """Posts keyed by (bucket code, time rank) and sorted, for "same bucket, inside the window" look-ups.

    A key is `code * span + time_rank`: codes are below 2**30 and span is at most 2n + 1, so keys fit
    in int64 for any table that fits in memory. Queries are visited in key order, so the window starts
    they look up come in ascending order (binary searches stay in cache) and each query's window end is
    simply the end of its own run of equal keys.
    """

    def __init__(self, codes: np.ndarray, time_rank: np.ndarray, span: int):
        indexed = np.flatnonzero(codes >= 0)
        keys = codes[indexed] * span + time_rank[indexed]
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.posts = indexed[order]
        self.span = span
        count = len(self.keys)
        run_last = np.ones(count, dtype=bool)
        run_last[:-1] = self.keys[1:] != self.keys[:-1]
        ends = np.where(run_last, np.arange(count) + 1, count)
        self.run_end = np.minimum.accumulate(ends[::-1])[::-1] if count else ends

    def pairs(self, is_query: np.ndarray, time_rank: np.ndarray, low_rank: np.ndarray, accounts: np.ndarray
              ) -> np.ndarray:
        """Sorted `query * n + post` for every query and every indexed post of ANOTHER account with the
        same code and a time rank in [low_rank, time_rank] of the query."""
        n = len(is_query)
        sorted_queries = np.flatnonzero(is_query[self.posts])
        found = []
        for start in range(0, len(sorted_queries), QUERY_CHUNK):
            at = sorted_queries[start:start + QUERY_CHUNK]
            queries = self.posts[at]
            hi = self.run_end[at]
            lo = np.searchsorted(self.keys, self.keys[at] - time_rank[queries] + low_rank[queries],
                                 side="left")
            lengths = hi - lo
            total = int(lengths.sum())
            if total == 0:
                continue
            query_rep = np.repeat(queries, lengths)
            offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            posts = self.posts[np.repeat(lo, lengths) + offsets]
            keep = accounts[query_rep] != accounts[posts]
            found.append(query_rep[keep] * n + posts[keep])
        return sorted_unique(np.concatenate(found)) if found else np.zeros(0, np.int64)


def sketch_cutoff(threshold: float, total_bits: int,
                  miss_probability: float = SKETCH_MISS_PROBABILITY) -> int:
    """Most differing hash bits a pair at cosine `threshold` shows, but for `miss_probability`."""
    return int(binom.isf(miss_probability, total_bits, math.acos(min(max(threshold, -1.0), 1.0)) / math.pi))


def _bound_vectors(unit: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For `rows` of unit vectors, [P u, |R u|] (float32): P projects onto the top `BOUND_COMPONENTS`
    principal directions of a fixed sample, R u = u - P u. For unit u, v: u.v = Pu.Pv + Ru.Rv <=
    Pu.Pv + |Ru| |Rv|, so one product of these short rows bounds every cosine from above (exactly, up to
    float32 rounding, which COSINE_MARGIN covers). The basis only decides how fast pairs are ruled out,
    never which pairs are found."""
    dim = unit.shape[1]
    if dim <= BOUND_COMPONENTS:  # short vectors: the bound is the cosine itself
        return np.concatenate([unit[rows], np.zeros((len(rows), 1), np.float32)], axis=1)
    rng = np.random.default_rng(LSH_SEED)
    sample = unit[np.sort(rng.choice(rows, min(len(rows), BOUND_SAMPLE), replace=False))].astype(np.float64)
    basis = np.linalg.svd(sample, full_matrices=False)[2][:BOUND_COMPONENTS].T  # (dim, k), k <= sample rows
    out = np.empty((len(rows), basis.shape[1] + 1), dtype=np.float32)
    for start in range(0, len(rows), BOUND_CHUNK):  # float64 temporaries of a few blocks: ~100 MB at 256-d
        block = unit[rows[start:start + BOUND_CHUNK]].astype(np.float64)
        projected = block @ basis
        residual = np.linalg.norm(block - projected @ basis.T, axis=1)
        out[start:start + len(block), :-1] = projected
        out[start:start + len(block), -1] = residual + 1e-6  # rounded up: the bound stays a bound
    return out


def _near_pairs(
    unit: np.ndarray, usable: np.ndarray, is_query: np.ndarray, accounts: np.ndarray, time_rank: np.ndarray,
    low_rank: np.ndarray, threshold: float, label: str,
) -> np.ndarray:
    """Sorted `query * n + post` pairs from other accounts inside the window with cosine >= threshold that
    the LSH index pairs: a shared bucket in some table, at most `sketch_cutoff` differing bits over all
    tables, and the exact (row-wise float32) cosine at or above the threshold.

    How they are found: a post's window is a run of the usable posts sorted by time, so queries in time
    order are taken in blocks and one matrix product of short bound vectors (`_bound_vectors`) bounds
    the cosine of each query with every post of its block's window. Only the pairs whose bound reaches the
    threshold are checked against the conditions above. The work is a few multiply-adds per pair of posts
    in one window (no per-bucket candidate lists: on clustered caption embeddings those were ~7% of all
    window pairs, most of them passing the bit screen, each verified by gathering two full vectors) and
    memory is bounded by the blocks, whatever the number of posts.
    """
    bits = lsh_bits(threshold)
    codes = _hash_codes(unit, usable, bits, LSH_TABLES)  # as scoring hashes (BLAS threads as they are)
    with threadpool_limits(1, user_api="blas"):  # small products: BLAS threads would spin on a busy machine
        return _near_pairs_here(unit, usable, is_query, accounts, time_rank, low_rank, threshold, label,
                                codes, sketch_cutoff(threshold, bits * LSH_TABLES))


def _near_pairs_here(
    unit: np.ndarray, usable: np.ndarray, is_query: np.ndarray, accounts: np.ndarray, time_rank: np.ndarray,
    low_rank: np.ndarray, threshold: float, label: str, codes: np.ndarray, cutoff: int,
) -> np.ndarray:
    n = len(unit)
    indexed = np.flatnonzero(usable)
    order = indexed[np.argsort(time_rank[indexed], kind="stable")]  # usable posts by time
    sorted_rank = time_rank[order]
    bound = _bound_vectors(unit, order)  # row k belongs to post order[k]
    query_at = np.flatnonzero(is_query[order])  # positions in `order`, in time order
    found: list[np.ndarray] = []
    blocks = range(0, len(query_at), COSINE_QUERY_BLOCK)
    for start in tqdm(blocks, desc=f"{label} duplicates", unit="block", disable=n < 500_000):
        at = query_at[start:start + COSINE_QUERY_BLOCK]
        queries, own = order[at], bound[at]
        lo = int(np.searchsorted(sorted_rank, low_rank[queries].min(), side="left"))
        hi = int(np.searchsorted(sorted_rank, time_rank[queries].max(), side="right"))
        for first in range(lo, hi, COSINE_POST_BLOCK):
            last = min(first + COSINE_POST_BLOCK, hi)
            upper = own @ bound[first:last].T
            q_index, p_index = np.nonzero(upper >= threshold - COSINE_MARGIN)
            q, p = queries[q_index], order[first + p_index]
            in_window = (time_rank[p] >= low_rank[q]) & (time_rank[p] <= time_rank[q])
            keep = in_window & (accounts[q] != accounts[p])
            q, p = q[keep], p[keep]
            shared = np.zeros(len(q), dtype=bool)
            differing = np.zeros(len(q), dtype=np.int64)
            for table in range(LSH_TABLES):
                shared |= codes[table, q] == codes[table, p]
                differing += np.bitwise_count(codes[table, q] ^ codes[table, p])
            keep = shared & (differing <= cutoff)
            q, p = q[keep], p[keep]
            cosines = np.einsum("ij,ij->i", unit[q], unit[p])
            keep = cosines >= threshold
            found.append(q[keep] * n + p[keep])
    return sorted_unique(np.concatenate(found)) if found else np.zeros(0, np.int64)


def _count_accounts(pairs: np.ndarray, accounts: np.ndarray) -> np.ndarray:
    """For each position, the number of distinct accounts among the posts paired with it."""
    n = len(accounts)
    if not len(pairs):
        return np.zeros(n)
    n_accounts = int(accounts.max()) + 1
    unique = sorted_unique((pairs // n) * n_accounts + accounts[pairs % n])
    return np.bincount(unique // n_accounts, minlength=n).astype(np.float64)


def same_day_duplicates(
    posts: pd.DataFrame,
    image_emb: np.ndarray | None,
    caption_emb: np.ndarray | None,
    *,
    image_threshold: float = 0.95,
    caption_threshold: float = 0.9,
    window_hours: float = 24.0,
    rows: np.ndarray | list[int] | None = None,
) -> pd.DataFrame:
    """`DUPLICATE_COLUMNS` for `rows` (positions in `posts`; default all), indexed by those positions.

    Counts OTHER accounts with a post in `[t - window_hours, t]` whose image embedding is within
    `image_threshold` cosine (NaN for a post without an image; all NaN when `image_emb` is None) and
    whose caption is the same after normalisation or within `caption_threshold` cosine (exact matches
    only when `caption_emb` is None). Every other row of `posts` is context.
    """
    for name, value in (("image_threshold", image_threshold), ("caption_threshold", caption_threshold)):
        if not 0 < value <= 1:
            raise DataError(f"must be in (0, 1], got {value}", field=name)
    if not window_hours > 0:
        raise DataError(f"must be positive, got {window_hours}", field="window_hours")
    check_posts(posts, ("account", "posted_at", "caption"))
    posts = posts.reset_index(drop=True)
    n = len(posts)
    rows = check_rows(rows, n)
    image_emb = check_embeddings(image_emb, n, "image_emb")
    caption_emb = check_embeddings(caption_emb, n, "caption_emb")
    out = pd.DataFrame(index=pd.Index(rows), columns=DUPLICATE_COLUMNS, dtype=np.float64)
    if n == 0 or len(rows) == 0:
        return out

    times = posted_at_ns(posts)
    window_ns = int(round(window_hours * 3600e9))
    accounts = pd.factorize(posts["account"].astype(str))[0].astype(np.int64)
    # Time ranks over post times and the window starts of the queries: keys stay small integers.
    is_query = np.zeros(n, dtype=bool)
    is_query[rows] = True
    starts = np.where(is_query, times - window_ns, np.iinfo(np.int64).min)
    distinct = sorted_unique(np.concatenate([times, starts[is_query]]))
    time_rank = np.searchsorted(distinct, times)
    low_rank = np.searchsorted(distinct, starts)  # only read at query positions
    span = len(distinct) + 1

    if image_emb is not None and image_emb.shape[1] and np.isfinite(image_emb[:, 0]).any():
        unit, usable = _unit(image_emb)  # (without one usable image the column stays NaN, nothing copied)
        pairs = _near_pairs(unit, usable, is_query, accounts, time_rank, low_rank, image_threshold,
                            "image")
        out["duplicate_image_accounts"] = np.where(usable, _count_accounts(pairs, accounts), np.nan)[rows]

    keys = [_caption_key(text) for text in posts["caption"].astype(str).tolist()]
    long_enough = np.array([bool(key) for key in keys], dtype=bool)
    text_codes = np.where(long_enough, pd.factorize(np.array(keys, dtype=object))[0], -1).astype(np.int64)
    caption_pairs = [_WindowIndex(text_codes, time_rank, span).pairs(is_query, time_rank, low_rank, accounts)]
    if caption_emb is not None:
        unit, usable = _unit(caption_emb)
        usable &= long_enough
        caption_pairs.append(
            _near_pairs(unit, usable, is_query, accounts, time_rank, low_rank, caption_threshold,
                        "caption")
        )
    out["duplicate_caption_accounts"] = _count_accounts(sorted_unique(np.concatenate(caption_pairs)),
                                                        accounts)[rows]
    return out


def _caption_key(text: str) -> str:
    """The normalised caption, or "" when it has fewer than MIN_CAPTION_WORDS words."""
    words = text.split()
    if len(words) < MIN_CAPTION_WORDS:
        return ""
    return " ".join(words).lower() if text.isascii() else normalise_caption(text)


class _HashedVectors:
    """Unit vectors of stored posts with their LSH codes at one threshold, computed once."""

    def __init__(self, matrix: np.ndarray, threshold: float, usable_too: np.ndarray | None = None):
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.shape[1] and len(matrix) and not np.isfinite(matrix[:, 0]).any():
            # No usable vector (a context without photos): nothing to normalise; `near` finds no candidate.
            self.unit, self.usable = matrix, np.zeros(len(matrix), dtype=bool)
        else:
            self.unit, self.usable = _unit(matrix)
        if usable_too is not None:
            self.usable &= usable_too
        self.threshold = threshold
        self.bits = lsh_bits(threshold)
        self.codes = _hash_codes(self.unit, self.usable, self.bits, LSH_TABLES)
        self.cutoff = sketch_cutoff(threshold, self.bits * LSH_TABLES)

    def near(self, vector: np.ndarray, usable_too: bool = True,
             among: np.ndarray | None = None) -> np.ndarray | None:
        """Positions of stored posts the index pairs with `vector` (None when the vector is unusable): a
        shared bucket in some table, few differing bits, exact cosine >= threshold, as `_near_pairs` decides.
        `among`: only these positions (sorted) are looked at (default: every stored post)."""
        unit, usable = _unit(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        if not (usable[0] and usable_too):
            return None
        codes = _hash_codes(unit, usable, self.bits, LSH_TABLES)[:, 0]
        if among is None:
            candidates = np.flatnonzero(self.usable & (self.codes == codes[:, None]).any(axis=0))
        else:
            candidates = among[self.usable[among] & (self.codes[:, among] == codes[:, None]).any(axis=0)]
        differing = np.zeros(len(candidates), dtype=np.int64)
        for table in range(LSH_TABLES):
            differing += np.bitwise_count(self.codes[table, candidates] ^ codes[table])
        close = candidates[differing <= self.cutoff]
        cosines = np.einsum("ij,ij->i", np.broadcast_to(unit, (len(close), unit.shape[1])), self.unit[close])
        return close[cosines >= self.threshold]


class ContextDuplicates:
    """`same_day_duplicates` for drafts scored against a stored context whose index is built once.

    `same_day_duplicates` hashes every post of the table it is given; scoring one draft against a
    model's stored posts that way hashes the whole context again per draft. This keeps the context's unit
    vectors, LSH codes and caption keys, and hashes only the draft: the counts are those
    `same_day_duplicates` gives the draft appended to the context (tests compare them).
    """

    def __init__(self, posts: pd.DataFrame, image_emb: np.ndarray | None, caption_emb: np.ndarray | None, *,
                 image_threshold: float = 0.95, caption_threshold: float = 0.9, window_hours: float = 24.0):
        check_posts(posts, ("account", "posted_at", "caption"))
        self.times = posted_at_ns(posts)
        self.accounts = posts["account"].astype(str).to_numpy(dtype=object)
        self.window_ns = int(round(window_hours * 3600e9))
        keys = [_caption_key(text) for text in posts["caption"].astype(str).tolist()]
        self.caption_keys = np.array(keys, dtype=object)
        long_enough = self.caption_keys != ""
        self.image = None if image_emb is None else _HashedVectors(image_emb, image_threshold)
        self.caption = None if caption_emb is None else _HashedVectors(
            caption_emb, caption_threshold, long_enough)
        self._by_time = np.argsort(self.times, kind="stable")
        self._sorted_times = self.times[self._by_time]

    def draft(self, account: str, times: Sequence[pd.Timestamp], image: np.ndarray | None,
              caption_vector: np.ndarray | None,
              caption: str) -> pd.DataFrame:
        """`DUPLICATE_COLUMNS` of one draft of `account` as if posted at each of `times` (one row each)."""
        stamps = np.array([pd.Timestamp(t).tz_convert("UTC").as_unit("ns").value for t in times],
                          dtype=np.int64)
        # framed once, at the end
        out = {column: np.full(len(stamps), np.nan) for column in DUPLICATE_COLUMNS}
        # Only stored posts inside some time's window can count: found by two binary searches, so a draft
        # costs the posts of its window, not the whole context (a million stored posts).
        if len(stamps):
            low = np.searchsorted(self._sorted_times, stamps.min() - self.window_ns, side="left")
            high = np.searchsorted(self._sorted_times, stamps.max(), side="right")
            window = np.sort(self._by_time[low:high])
        else:
            window = np.zeros(0, dtype=np.int64)
        window = window[self.accounts[window] != account]  # other accounts only
        if self.image is not None:
            near = None if image is None else self.image.near(image, among=window)
            if near is not None:
                out["duplicate_image_accounts"] = self._count(near, stamps)
        key = _caption_key(caption)
        same = window[self.caption_keys[window] == key] if key else np.zeros(0, np.int64)
        if self.caption is not None and caption_vector is not None:
            near = self.caption.near(caption_vector, usable_too=bool(key), among=window)
            if near is not None:
                same = np.union1d(same, near)
        out["duplicate_caption_accounts"] = self._count(same, stamps)
        return pd.DataFrame(np.column_stack([out[column] for column in DUPLICATE_COLUMNS]),
                            columns=DUPLICATE_COLUMNS,
                            index=pd.RangeIndex(len(stamps)))

    def _count(self, posts: np.ndarray, stamps: np.ndarray) -> np.ndarray:
        """For each time, distinct accounts among `posts` posted in [t - window, t]."""
        times, accounts = self.times[posts], self.accounts[posts]
        return np.array([len(set(accounts[(times >= t - self.window_ns) & (times <= t)])) for t in stamps],
                        dtype=np.float64)
