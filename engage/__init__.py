"""engage: how will a micro-influencer's draft post do, before it is posted?

The few names a user imports live here; everything else is internal:

    settings = engage.load_settings("configs/smoke.yaml")     # or engage.Settings() for the defaults
    posts = engage.load_posts("demo")                          # or "table" / "instaloader" with a path
    result = engage.train(settings)                            # logs to MLflow, registers, returns the run
    model = engage.EngageModel.from_uri("models:/engage@champion")   # or a bundle directory
    scorer = engage.Scorer(model)                              # what serves it (cache, batcher: for_serving)
    answer = scorer.score(engage.Draft(account="anna.bakes", caption="Sourdough day #bread"))
    answer.likes.expected, answer.likes.usual, answer.likes.uplift_percent   # typed
    (engage/scoring/answers.py) scorer.compare([draft_a, draft_b], goal="saves").drafts[0].index         #
    which draft does better

`EngageModel`, `Scorer`, `Draft` and `train` are imported
on first use, so `import engage` stays light (no torch).
"""

import os

# OpenMP threads (torch, LightGBM) sleep between parallel regions instead of spinning. On a few shared cores
# spinning threads steal the CPU the next region needs: fitting the smoke models took 23 s instead of 1.9 s
# next to another busy process (docs/performance.md). Read by the OpenMP runtime when torch or LightGBM is
# first imported, so it is set here, before either; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engage.config import Settings, load_settings  # noqa: E402
from engage.data import load_posts  # noqa: E402

__all__ = ["Draft", "EngageModel", "Scorer", "Settings", "load_posts", "load_settings", "train"]

_LAZY = {
    "Draft": ("engage.model.draft", "Draft"),
    "EngageModel": ("engage.model.bundle", "EngageModel"),
    "Scorer": ("engage.scoring.scorer", "Scorer"),
    "train": ("engage.training", "train"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'engage' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
__version__ = "0.1.0"
