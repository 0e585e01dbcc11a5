"""The demo's vocabulary: sample photos and where their subjects are, niches (photo pools and caption
material), names, caption phrases, and the colour looks with their distance in visible steps.

The words are data, in vocabulary.yaml beside this module (read once, at import); what the simulator does
with them is code. Nothing here draws a random number; engage/data/demo/plans.py draws from these tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")


@dataclass(frozen=True)
class Niche:
    name: str
    photos: dict[str, float]
    handle_words: tuple[str, ...]
    things: tuple[str, ...]
    openers: tuple[str, ...]
    details: tuple[str, ...]
    questions: tuple[str, ...]
    hashtags: tuple[str, ...]
    brands: tuple[tuple[str, str], ...]  # (brand name, handle)
    emoji: tuple[str, ...]


def _tuples(value: Any) -> Any:
    """YAML lists as tuples (the tables are immutable and hashable), recursively."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _load(path: Path = VOCABULARY_FILE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


_WORDS = _load()

PHOTO_FILES: dict[str, str] = dict(_WORDS["photo_files"])
SUBJECTS: dict[str, tuple[float, float, float, float]] = {k: _tuples(v) for k,
                                                          v in _WORDS["subjects"].items()}
NICHES: dict[str, Niche] = {
    n["name"]: Niche(**{k: dict(v) if k == "photos" else _tuples(v) for k, v in n.items()})  # type: ignore[arg-type]
    for n in _WORDS["niches"]
}
FIRST_NAMES: tuple[str, ...] = _tuples(_WORDS["first_names"])
INSPIRATIONS: tuple[str, ...] = _tuples(_WORDS["inspirations"])
RAMBLES: tuple[str, ...] = _tuples(_WORDS["rambles"])
GENERIC_QUESTIONS: tuple[str, ...] = _tuples(_WORDS["generic_questions"])
CALLS_TO_ACTION: tuple[str, ...] = _tuples(_WORDS["calls_to_action"])
GENERIC_HASHTAGS: tuple[str, ...] = _tuples(_WORDS["generic_hashtags"])
GENERIC_EMOJI: tuple[str, ...] = _tuples(_WORDS["generic_emoji"])
BRAND_MESSAGES: tuple[str, ...] = _tuples(_WORDS["brand_messages"])
SPONSORED_LINES: tuple[str, ...] = _tuples(_WORDS["sponsored_lines"])
CAMPAIGN_LINES: tuple[str, ...] = _tuples(_WORDS["campaign_lines"])
CODE_WORDS: tuple[str, ...] = _tuples(_WORDS["code_words"])
#: Disclosure labels of sponsored posts and how often each is used (None: not disclosed).
DISCLOSURES: dict[str | None, float] = {None: 0.22, "#ad": 0.30, "#paid": 0.18, "#sponsored": 0.15,
                                        "paid partnership": 0.15}

# ----------------------------------------------------------------------------------------------------
# Looks: a colour grade plus brightness and contrast. Distances between looks are in "visible steps".


@dataclass(frozen=True)
class Look:
    """The colour look of one rendered photo."""

    grade: str = "natural"
    temperature: float = 0.0  # >0 warmer (red up, blue down), <0 cooler
    saturation: float = 1.0  # 0 monochrome, 1 unchanged, >1 vivid
    fade: float = 0.0  # lifted blacks, lowered whites
    split_tone: float = 0.0  # teal shadows, orange highlights
    brightness: float = 1.0  # multiplier
    contrast: float = 1.0  # multiplier around mid-grey

    def vector(self) -> np.ndarray:
        # One unit on each axis is about one clearly visible step of that adjustment.
        return np.array([
            self.temperature / 1.0, self.saturation / 0.5, self.fade / 0.6, self.split_tone / 0.6,
            math.log(self.brightness) / 0.2, math.log(self.contrast) / 0.2,
        ])


GRADES: dict[str, Look] = {g.grade: g for g in [
    Look("natural"),
    Look("warm", temperature=1.0, saturation=1.1),
    Look("cool", temperature=-1.0, saturation=0.95),
    Look("faded", saturation=0.7, fade=0.9),
    Look("vivid", saturation=1.6),
    Look("mono", saturation=0.0),
    Look("sepia", temperature=1.1, saturation=0.0),
    Look("teal_orange", saturation=1.15, split_tone=1.0),
    Look("pastel", temperature=0.3, saturation=0.65, fade=0.5),
]}
BRAND_LOOK = GRADES["natural"]  # a brand's campaign asset is posted as the brand made it
OFF_STYLE_DISTANCE = 1.0  # a post whose look is this far from its account's look is off-style
ZOOM_HABITS: dict[str, tuple[float, float]] = {"wide": (1.4, 1.8), "medium": (1.8, 2.4), "tight": (2.4, 3.1)}
#: Sample photos without colour: only temperature, tone, fade, brightness and contrast show on them.
GREY_PHOTOS = frozenset({"brick", "camera", "coins", "grass", "gravel", "horse", "moon", "page", "text"})


def look_distance(a: Look, b: Look, *, colour: bool = True) -> float:
    """How far apart two looks are, in visible steps; above `OFF_STYLE_DISTANCE` a feed looks inconsistent.

    On a grey photo (`colour=False`) saturation changes nothing, so that axis is left out.
    """
    difference = a.vector() - b.vector()
    if not colour:
        difference[1] = 0.0
    return float(np.linalg.norm(difference))
