"""`ScoringModel`: what serving asks of whatever scores its drafts.

The loaded model's `engage.scoring.scorer.Scorer` satisfies it, and tests serve a stand-in; this module stays
light to import (no torch), so the HTTP layer never imports the embedders through it. Its answers are the
typed results of engage/scoring/answers.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from engage.model.draft import Draft
from engage.scoring.answers import Answer, BestHour
from engage.zones import DEFAULT_TIME_ZONE


class ScoringModel(Protocol):
    """What serving asks of a scorer: its model's identity, the accounts it knows, and the scoring verbs."""

    @property
    def version(self) -> str: ...

    @property
    def embedder(self) -> str: ...

    @property
    def context_posts(self) -> pd.DataFrame: ...

    @property
    def info(self) -> dict[str, Any]: ...

    @property
    def models(self) -> dict[str, Any]: ...  # target name -> its model: the targets this model predicts

    @property
    # account -> its last thumbnails (data: URLs), newest first
    def feed_photos(self) -> dict[str, list[str]]: ...

    def check_embedder(self) -> None: ...

    def score(self, draft: Draft, *, n_factors: int = 6) -> Answer: ...

    def best_hour(self, draft: Draft, *, days: int = 7, start: datetime | None = None, goal: str = "likes",
                  time_zone: str = DEFAULT_TIME_ZONE) -> BestHour: ...

    def serving_settings(self) -> dict[str, Any]: ...  # shown by /ready: batching and vector cache
