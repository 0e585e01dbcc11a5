"""History and duplicate features on partitions of the posts table, one Ray task per partition.

Each task calls the local feature function (`history_features`, `same_day_duplicates`) on its partition,
so the Ray engine has no feature code of its own. A partition holds everything its rows' features depend on:

* history: a post's features come from its own account's earlier posts only, so a partition is a block
  of whole accounts (balanced by post count). `history_features` gives a row the same bits whatever
  other rows its table holds.
* duplicates: a post's counts come from other accounts' posts in `[t - window, t]`, so a partition is a
  slice of time plus the window before it as context. The LSH hashes of a post depend only on its own
  embedding and every candidate is verified with the exact cosine, so a partition finds exactly the
  pairs the whole table would.

Blocks travel as pandas frames with their embedding rows (Ray Data's groupby would shuffle the embedding
columns through Arrow and back for the same result). A table without photos has one NaN image row seen n
times (`engage.features.pipeline`): a block's share of it travels as that one row and is seen again as
many times in the task (indexing or pickling the view would copy it: 5 GB of NaN at a million posts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import ray

from engage.features.duplicates import DUPLICATE_COLUMNS, same_day_duplicates
from engage.features.history import HISTORY_COLUMNS, history_features, posted_at_ns
from engage.features.vectors import repeats_one_row  # NumPy only: not the pipeline's torch in every task

#: What a task receives for an embedding matrix: its block's rows, or (one row, how many times it is seen).
Rows = np.ndarray | tuple[np.ndarray, int]


def block_rows(matrix: np.ndarray, members: np.ndarray) -> Rows:
    """`matrix[members]` to send to a task; one row seen n times is sent as that row and a count."""
    if repeats_one_row(matrix):
        return np.ascontiguousarray(matrix[:1]), len(members)
    return matrix[members]


def task_rows(rows: Rows) -> np.ndarray:
    """A task's matrix from what `block_rows` sent (one row seen n times again: a read-only view)."""
    if isinstance(rows, tuple):
        row, n = rows
        return np.broadcast_to(row, (n, row.shape[1]))
    return rows


@ray.remote
def _history_task(posts: pd.DataFrame, image: Rows, caption: Rows, n_last: int,
                  rows: np.ndarray) -> pd.DataFrame:
    return history_features(posts, task_rows(image), task_rows(caption), n_last=n_last, rows=rows)


@ray.remote
def _duplicates_task(posts: pd.DataFrame, image: Rows, caption: Rows, rows: np.ndarray,
                     options: dict) -> pd.DataFrame:
    return same_day_duplicates(posts, task_rows(image), task_rows(caption), rows=rows, **options)


def account_blocks(accounts: pd.Series, n_blocks: int) -> np.ndarray:
    """Block number per post: whole accounts, the largest first onto the lightest block."""
    codes, names = pd.factorize(accounts.astype(str))
    sizes = np.bincount(codes, minlength=len(names))
    load = np.zeros(max(1, min(n_blocks, len(names))), dtype=np.int64)
    block_of_account = np.zeros(len(names), dtype=np.int64)
    for account in np.argsort(-sizes, kind="stable"):
        block = int(np.argmin(load))
        block_of_account[account] = block
        load[block] += sizes[account]
    return block_of_account[codes]


def _gather(tasks: list[tuple[np.ndarray, ray.ObjectRef]], rows: np.ndarray,
            columns: list[str]) -> pd.DataFrame:
    """The tasks' frames (indexed by positions in their block) re-indexed by positions in the whole table."""
    frames = []
    for wanted, ref in tasks:
        frame = ray.get(ref)
        frames.append(frame.set_axis(wanted))
    if not frames:
        return pd.DataFrame(index=pd.Index(rows), columns=columns, dtype=np.float64)
    return pd.concat(frames).reindex(rows)[columns]


def history_on_blocks(posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, n_last: int,
                      rows: np.ndarray,
                      n_blocks: int) -> pd.DataFrame:
    """`history_features` of `rows`, each account's posts computed together in one task."""
    posts = posts.reset_index(drop=True)
    block = account_blocks(posts["account"], n_blocks)
    tasks = []
    for b in np.unique(block[rows]):
        members = np.flatnonzero(block == b)
        wanted = rows[block[rows] == b]
        local = np.searchsorted(members, wanted)
        tasks.append((wanted, _history_task.remote(posts.iloc[members], block_rows(image, members),
                                                   block_rows(caption, members), n_last, local)))
    return _gather(tasks, rows, HISTORY_COLUMNS)


def duplicates_on_blocks(posts: pd.DataFrame, image: np.ndarray, caption: np.ndarray, *, rows: np.ndarray,
                         n_blocks: int, image_threshold: float, caption_threshold: float,
                         window_hours: float) -> pd.DataFrame:
    """`same_day_duplicates` of `rows`, on slices of time that each carry the window before them."""
    posts = posts.reset_index(drop=True)
    times = posted_at_ns(posts)
    # A second more than the window: extra context never changes a count, too little would.
    margin = int(round(window_hours * 3600e9)) + 1_000_000_000
    by_time = rows[np.argsort(times[rows], kind="stable")]
    options = {"image_threshold": image_threshold, "caption_threshold": caption_threshold,
               "window_hours": window_hours}
    tasks = []
    for wanted in np.array_split(by_time, max(1, min(n_blocks, len(by_time)))):
        if not len(wanted):
            continue
        first, last = times[wanted].min(), times[wanted].max()
        members = np.flatnonzero((times >= first - margin) & (times <= last))
        wanted = np.sort(wanted)
        local = np.searchsorted(members, wanted)
        tasks.append((wanted, _duplicates_task.remote(posts.iloc[members], block_rows(image, members),
                                                      block_rows(caption, members), local, options)))
    return _gather(tasks, rows, DUPLICATE_COLUMNS)
