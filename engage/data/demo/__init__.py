"""The demo data simulator: a deterministic population of micro-influencers whose posts behave the way the
influencer-marketing literature says real posts do, with the ground truth kept beside them.

`load_demo(path, **options)` (options: fields of `engage.config.DemoSettings`) is what `load_posts("demo",
...)` calls: it generates the population on first use (or when the directory's `manifest.json` does not match
the options) and returns the canonical posts table. `generate_demo(out_dir, **options)` always generates.
Every choice comes from numpy Generators seeded from `seed` per account and per stage (never a global RNG,
never the clock), so the same options give the same table and the same JPEG bytes.

How a population is made (docs/demo-data.md has every number and where it comes from), one module each:

    vocabulary.py  sample photos, niches, caption phrases (vocabulary.yaml), colour looks (no randomness)
    plans.py       accounts, campaigns, post plans: time, photo, look, caption   (one RNG stream per account)
    outcomes.py    felt_fake, likes, comments from the latent quantities        (one stream per account)
    photos.py      photo plans -> pixels (pure functions of the plans)
    store.py       the directory: generated atomically, manifest.json last, loaded as the posts table

A killed generation never leaves a population that a later call would trust (`engage.files.staged_write`).
"""

from engage.data.demo.outcomes import felt_fake_logit
from engage.data.demo.photos import apply_look, render_photo
from engage.data.demo.plans import PERIOD_END, SIMULATOR_VERSION, PhotoPlan
from engage.data.demo.store import generate_demo, is_current, load_demo, load_truth
from engage.data.demo.vocabulary import (
    BRAND_MESSAGES,
    DISCLOSURES,
    GRADES,
    NICHES,
    OFF_STYLE_DISTANCE,
    Look,
    look_distance,
)

__all__ = [
    "BRAND_MESSAGES", "DISCLOSURES", "GRADES", "NICHES", "OFF_STYLE_DISTANCE", "PERIOD_END",
    "SIMULATOR_VERSION",
    "Look", "PhotoPlan", "apply_look", "felt_fake_logit", "generate_demo", "is_current", "load_demo",
    "load_truth",
    "look_distance", "render_photo",
]
