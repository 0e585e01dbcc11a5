"""Batch scoring on Ray: the drafts spread over an actor pool of model actors.

The driver loads the model once and puts it in Ray's object store; each actor takes it from there, builds
its embedders once (`check_embedder`) and one `Scorer`, and scores its batches with the local path's
function (`engage.scoring.table.score_drafts`), so a draft gets the same answer on either engine. Rows come
back in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import ray
from tqdm.auto import tqdm

from engage.config import RuntimeSettings
from engage.distributed.cluster import ray_session
from engage.scoring.scorer import Scorer
from engage.scoring.table import OUTPUT_COLUMNS, score_drafts

#: Drafts per actor call: small, so the work spreads evenly and the progress bar moves.
BATCH_DRAFTS = 16


class DraftScorer:
    """A Ray Data actor holding one copy of the model."""

    def __init__(self, model: Any, images_dir: str):
        model = ray.get(model) if isinstance(model, ray.ObjectRef) else model
        model.check_embedder()
        self.scorer = Scorer(model)
        self.images_dir = images_dir

    def __call__(self, drafts: pd.DataFrame) -> pd.DataFrame:
        return score_drafts(self.scorer, drafts, self.images_dir)


def score_on_ray(model: Any, drafts: pd.DataFrame, images_dir: str | Path,
                 runtime: RuntimeSettings) -> pd.DataFrame:
    """`score_drafts` over `runtime.ray_workers` model actors; one row per draft, in the drafts' order."""
    with ray_session(runtime):
        import ray.data

        # Object columns (captions, paths) travel as they are; Arrow would turn missing values into strings.
        dataset = ray.data.from_pandas(drafts.astype(object)).map_batches(
            DraftScorer, fn_constructor_kwargs={"model": ray.put(model), "images_dir": str(images_dir)},
            batch_size=BATCH_DRAFTS, batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=runtime.ray_workers),
            num_cpus=runtime.ray_cpus_per_worker,
        )
        parts = []
        with tqdm(total=len(drafts), desc="scoring drafts on Ray", unit="draft") as bar:
            for part in dataset.iter_batches(batch_size=None, batch_format="pandas"):
                parts.append(part)
                bar.update(len(part))
    if not parts:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    scores = pd.concat(parts, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)[
        OUTPUT_COLUMNS]
    # Through Arrow, missing predictions come back as pandas NA in object columns: give them the local dtypes.
    numeric = [c for c in OUTPUT_COLUMNS if c not in ("account", "flags", "error")]
    scores[numeric] = scores[numeric].apply(pd.to_numeric).astype(float)
    scores["row"] = scores["row"].astype(int)
    return scores
