"""The stored context of a trained model, made ready once per scorer so that no draft repeats work on it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engage.features.duplicates import ContextDuplicates
from engage.features.history import posted_at_ns
from engage.model.bundle import EngageModel
from engage.model.known import SimilarAccounts
from engage.model.targets import TARGETS


class PreparedContext:
    """The stored context made ready once per scorer, so that no draft repeats work on it.

    Holds each account's stored posts in time order and the duplicate index (unit vectors, LSH codes and
    caption keys) of every stored post; a draft then looks up its own account's posts and hashes only itself.
    """

    def __init__(self, model: EngageModel):
        fs = model.settings.features
        posts = model.context_posts
        self.times = posted_at_ns(posts)
        accounts = posts["account"].astype(str).to_numpy(dtype=object)
        order = np.lexsort((self.times, pd.factorize(accounts)[0]))
        starts: list[int] = (np.flatnonzero(np.r_[True, accounts[order][1:] != accounts[order][:-1]]).tolist()
                             if len(order) else [])
        bounds = [*starts, len(order)]
        self.by_account = {accounts[order[s]]: order[s:e] for s,
                           e in zip(bounds[:-1], bounds[1:], strict=True)}
        self.duplicates = ContextDuplicates(
            posts, model.context_vectors.image, model.context_vectors.caption,
            image_threshold=fs.duplicate_image_cosine, caption_threshold=fs.duplicate_caption_cosine,
            window_hours=fs.duplicate_window_hours,
        )
        #: what an account the model does not know is scored from (engage/model/known.py)
        self.sizes = SimilarAccounts(posts, {name: TARGETS[name].column for name in model.models
                                             if TARGETS[name].kind == "count"})

    def first_posts(self, account: str, n: int) -> np.ndarray:
        """Positions of the account's `n` earliest stored
        posts, oldest first (none for an unknown account)."""
        return self.by_account.get(account, np.zeros(0, dtype=np.int64))[:n]

    def earlier_posts(self, account: str, t: pd.Timestamp) -> np.ndarray:
        """Positions of the account's stored posts strictly before `t`, oldest first."""
        positions = self.by_account.get(account, np.zeros(0, dtype=np.int64))
        return positions[self.times[positions] < t.as_unit("ns").value]
