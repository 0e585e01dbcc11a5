"""Reasons a person understands: feature names in words, per-draft factors and rule-based flags.

* `top_factors`: the largest per-draft contributions of the likes model (LightGBM `pred_contrib`, in
  log1p-likes units; no extra model), named in words with the draft's value ("not sponsored", "3 hashtags").
  The PCA components of an embedding are summed into one factor ("what the photo shows"), since a single
  component means nothing to a person.
* `draft_flags`: the rules from the influencer-marketing literature, each with a concrete message. The
  thresholds that depend on the data (what counts as blurry, dark or off-style) are percentiles of the
  training features (`compute_norms`), stored in the bundle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from engage.data.schema import INSIGHT_COUNTS

# Names of the features the rules read (see docs/features.md).
HASHTAGS = "hashtags"
HASHTAG_Z = "hashtags_z"
CAPTION_CHARS = "caption_chars"
CAPTION_CHARS_Z = "caption_chars_z"
HAS_AD = "has_ad"
HAS_PAID = "has_paid"
HAS_SPONSORED = "has_sponsored"
BRAND_MESSAGING = "brand_phrases"
PHOTO_CONSISTENCY = "image_feed_similarity"
SHARPNESS = "sharpness"
BRIGHTNESS = "brightness"
DUPLICATE_IMAGES = "duplicate_image_accounts"
DUPLICATE_CAPTIONS = "duplicate_caption_accounts"

FEATURE_WORDS: dict[str, str] = {
    "caption_chars": "caption length",
    "caption_words": "caption length in words",
    "hashtags": "number of hashtags",
    "mentions": "number of @mentions",
    "emojis": "number of emoji",
    "questions": "questions to the audience",
    "cta_phrases": "calls to action",
    "giveaway_phrases": "giveaway wording",
    "has_ad": "#ad tag",
    "has_paid": "#paid tag",
    "has_sponsored": "#sponsored tag",
    "has_paid_partnership": "'paid partnership' wording",
    "has_partner_tag": "#gifted / #collab tags",
    "disclosures": "disclosure tags",
    "discount_codes": "discount codes",
    "brand_phrases": "brand-messaging phrases",
    "exclamation_ratio": "exclamation marks",
    "uppercase_ratio": "capital letters",
    "language": "caption language",
    "sharpness": "photo sharpness",
    "brightness": "photo brightness",
    "clipped_highlights": "blown-out highlights",
    "clipped_shadows": "crushed shadows",
    "contrast": "photo contrast",
    "colourfulness": "photo colourfulness",
    "width": "photo size",
    "height": "photo size",
    "aspect_ratio": "photo aspect ratio",
    "text_overlay": "text drawn on the photo",
    "image_feed_similarity": "photo matches your usual feed",
    "image_feed_max_similarity": "photo resembles one of your recent posts",
    "caption_feed_similarity": "caption matches your usual captions",
    "caption_feed_max_similarity": "caption resembles a recent caption",
    "hashtags_z": "hashtags compared with your habit",
    "caption_chars_z": "caption length compared with your habit",
    "days_since_previous": "days since your previous post",
    "posts_last_30_days": "how often you post",
    "hour_utc": "posting hour",
    "weekday": "posting weekday",
    "likes_baseline": "your usual likes",
    "comments_baseline": "your usual comments",
    "likes_trend": "your recent likes trend",
    "comments_trend": "your recent comments trend",
    "n_earlier_posts": "how many earlier posts are known",
    "followers": "followers",
    "sponsored_share": "share of recent sponsored posts",
    "duplicate_image_accounts": "same photo on other feeds today",
    "duplicate_caption_accounts": "same caption on other feeds today",
    "sponsored": "sponsored post",
    "is_video": "video",
    "image_caption_similarity": "caption matches the photo",
    **{f"{count}_baseline": f"your usual {count.replace('_', ' ')}" for count in INSIGHT_COUNTS},
}


def describe_feature(name: str) -> str:
    if name.startswith("photo_pc"):
        return "what the photo shows"
    if name.startswith("caption_pc"):
        return "what the caption is about"
    return FEATURE_WORDS.get(name, name.replace("_", " "))


#: Count features: (one, many) nouns, so a factor reads "3 hashtags" or "1 question".
COUNT_NOUNS: dict[str, tuple[str, str]] = {
    "hashtags": ("hashtag", "hashtags"),
    "mentions": ("@mention", "@mentions"),
    "emojis": ("emoji", "emoji"),
    "questions": ("question to the audience", "questions to the audience"),
    "cta_phrases": ("call to action", "calls to action"),
    "giveaway_phrases": ("giveaway phrase", "giveaway phrases"),
    "disclosures": ("disclosure tag", "disclosure tags"),
    "discount_codes": ("discount code", "discount codes"),
    "brand_phrases": ("brand-messaging phrase", "brand-messaging phrases"),
    "duplicate_image_accounts": ("other feed with the same photo today",
                                 "other feeds with the same photo today"),
    "duplicate_caption_accounts": ("other feed with the same caption today",
                                   "other feeds with the same caption today"),
    "n_earlier_posts": ("earlier post known", "earlier posts known"),
}
#: Yes/no features: (when present, when absent).
PRESENCE: dict[str, tuple[str, str]] = {
    "sponsored": ("sponsored post", "not sponsored"),
    "is_video": ("video", "photo post"),
    "has_ad": ("#ad tag", "no #ad tag"),
    "has_paid": ("#paid tag", "no #paid tag"),
    "has_sponsored": ("#sponsored tag", "no #sponsored tag"),
    "has_paid_partnership": ("'paid partnership' wording", "no 'paid partnership' wording"),
    "has_partner_tag": ("#gifted / #collab tags", "no #gifted / #collab tags"),
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def describe_value(name: str, value: float) -> str:
    """A feature and the draft's value of it, in words: "not
    sponsored", "3 hashtags", "posting at 19:00 UTC"."""
    words = describe_feature(name)
    if value is None or pd.isna(value):
        if name == "sponsored":
            return "sponsorship not stated"
        return f"{words}: unknown"
    value = float(value)
    if name in PRESENCE:
        present, absent = PRESENCE[name]
        return present if value > 0 else absent
    if name in COUNT_NOUNS:
        one, many = COUNT_NOUNS[name]
        count = int(round(value))
        return f"{count} {one if count == 1 else many}"
    if name == "caption_chars":
        return f"caption of {int(round(value))} characters"
    if name == "caption_words":
        return f"caption of {int(round(value))} words"
    if name == "hour_utc":
        return f"posting at {int(value):02d}:00 UTC"
    if name == "weekday" and 0 <= int(value) < 7:
        return f"posting on a {WEEKDAYS[int(value)]}"
    if name == "days_since_previous":
        return f"{value:.1f} days since your previous post"
    if name == "followers":
        return f"{int(round(value)):,} followers"
    if name == "posts_last_30_days":
        count = int(round(value))
        return f"{count} post{'' if count == 1 else 's'} in the 30 days before"
    if name.endswith("_z"):
        return f"{words} ({value:+.1f} standard deviations)"
    return f"{words}: {value:.3g}"


def top_factors(features: pd.DataFrame, likes_model: Any, n: int = 6) -> list[dict[str, Any]]:
    """The `n` largest contributions to this draft's expected log1p likes, largest first, each named in words
    with the draft's value ("not sponsored", "3 hashtags"); features that share words (the PCA components of
    an embedding, "what the photo shows") are summed into one factor. Each says which part of the prediction
    it moves: `usual` (the account's level: its history, followers, the time) or `draft` (the uplift: the
    photo, the caption, the format)."""
    contributions = likes_model.contributions(features)[0][:-1]  # the last column is the bias
    row = features.iloc[0]
    names = getattr(likes_model, "feature_names_", list(features.columns))  # a model may see a subset
    level = set(getattr(likes_model, "level_names_", []))
    grouped: dict[tuple[str, str], float] = {}
    members: dict[tuple[str, str], list[str]] = {}
    for name, value in zip(names, contributions, strict=True):
        key = (describe_feature(name), "usual" if name in level else "draft")
        grouped[key] = grouped.get(key, 0.0) + float(value)
        members.setdefault(key, []).append(name)
    ranked = sorted(grouped.items(), key=lambda kv: abs(kv[1]), reverse=True)
    return [
        {"feature": describe_value(members[key][0],
                                   row[members[key][0]]) if len(members[key]) == 1 else key[0],
         "contribution": round(value, 4), "part": key[1]}
        for key, value in ranked[:n] if value != 0.0
    ]


#: Fewest held-out draft pairs on which a model's within-account skill is stated as a figure.
MIN_SKILL_PAIRS = 30


def draft_skill(metrics: dict[str, Any], target: str = "likes") -> dict[str, Any]:
    """How far the draft's uplift can be trusted, from the model's own held-out draft pairs (two posts of one
    account at most 7 days apart, scored as two drafts): the share ordered right, the pairs, the posts the
    model was trained on, and in plain words whether it can tell two drafts apart (the lower end of a 90%
    interval on that share above a coin's 0.5). A model that logged no such figure, or one measured on fewer
    than `MIN_SKILL_PAIRS` pairs, says it cannot yet tell drafts apart."""
    share = metrics.get(f"test_{target}_draft_pairs_7d")
    pairs = int(metrics.get(f"test_{target}_draft_pairs_7d_n") or 0)
    trained = int(metrics.get("n_train") or 0)
    if share is None or (isinstance(share, float) and math.isnan(share)):
        share = None
    if share is None or pairs < MIN_SKILL_PAIRS:
        return {"target": target, "draft_pairs_7d": share, "pairs": pairs, "trained_on_posts": trained,
                "tells_drafts_apart": False,
                "message": f"Trained on {trained} posts, with {pairs} "
                "held-out pairs of posts a week apart to check it on: "
            f"this model cannot yet tell two drafts apart. Trust the usual {target}, not the draft's +/-."}
    low = share - 1.645 * math.sqrt(share * (1 - share) / pairs)
    percent = round(100 * share)
    if low <= 0.5:
        return {"target": target, "draft_pairs_7d": round(share, 4), "pairs": pairs,
                "trained_on_posts": trained,
                "tells_drafts_apart": False,
                "message": f"Of {pairs} held-out pairs of posts a week "
                f"apart, it ordered {percent}% right, no surer than a "
                f"coin: this model (trained on {trained} posts) cannot yet tell two drafts apart. Trust the "
                           f"usual {target}, not the draft's +/-."}
    return {"target": target, "draft_pairs_7d": round(share, 4), "pairs": pairs, "trained_on_posts": trained,
            "tells_drafts_apart": True,
            "message": f"Of {pairs} held-out pairs of posts a week "
            f"apart, it ordered {percent}% right (a coin: 50%): "
                       f"trust which draft it prefers more than by how much."}


def compute_norms(features: pd.DataFrame) -> dict[str, float]:
    """Data-dependent thresholds for the flags, from the training features."""
    def pct(column: str, q: float, default: float) -> float:
        if column not in features or features[column].notna().sum() < 10:
            return default
        return float(np.nanpercentile(features[column].to_numpy(dtype=float), q))

    return {
        "photo_consistency_p10": pct(PHOTO_CONSISTENCY, 10, float("nan")),
        "photo_consistency_p50": pct(PHOTO_CONSISTENCY, 50, float("nan")),  # the feed preview's "usual"
        "sharpness_p10": pct(SHARPNESS, 10, float("nan")),
        "brightness_p5": pct(BRIGHTNESS, 5, 0.2),
        "hashtags_p95": pct(HASHTAGS, 95, 20.0),
        "caption_chars_p95": pct(CAPTION_CHARS, 95, 1000.0),
    }


def _value(row: pd.Series, name: str) -> float:
    value = row.get(name, float("nan"))
    return float(value) if value is not None and not pd.isna(value) else float("nan")


def draft_flags(row: pd.Series, norms: dict[str, float], *,
                window_hours: float = 24.0) -> list[dict[str, str]]:
    """The literature's rules applied to one draft's features, each with a concrete message that is true of
    the case it is raised in: against the account's habit where its history gives one, else against all
    training posts. (What the model knows about the account is said by engage/model/known.py's
    `knowledge_flags`.)"""
    flags: list[dict[str, str]] = []

    def flag(code: str, message: str) -> None:
        flags.append({"code": code, "message": message})

    hashtags, hashtags_z = _value(row, HASHTAGS), _value(row, HASHTAG_Z)
    if hashtags_z > 2 or (math.isnan(hashtags_z) and hashtags > norms["hashtags_p95"]) or hashtags > 20:
        if hashtags_z > 2:
            than = "far more than this account usually uses"
        elif hashtags > 20:
            than = "more than 20, which reads as stuffing whatever the account's habit"
        else:
            than = f"more than 95% of the training posts carry ({norms['hashtags_p95']:.0f})"
        flag("too_many_hashtags",
             f"{int(hashtags)} hashtags is {than}; audiences punish hashtag stuffing, keep the "
             "few that describe the post.")
    chars, chars_z = _value(row, CAPTION_CHARS), _value(row, CAPTION_CHARS_Z)
    if chars_z > 2 or (math.isnan(chars_z) and chars > norms["caption_chars_p95"]):
        than = ("much longer than this account's usual captions" if chars_z > 2
                else "longer than 95% of the training posts' captions "
                f"({norms['caption_chars_p95']:.0f} characters)")
        flag("caption_too_long",
             f"The caption ({int(chars)} characters) is {than}; long captions lose readers, so "
             "cut it to the detail that matters.")
    disclosed = [t for t, name in (("#ad", HAS_AD), ("#paid", HAS_PAID),
                                   ("#sponsored", HAS_SPONSORED)) if _value(row, name) > 0]
    if disclosed:
        flag("disclosure_tags",
             f"{'/'.join(disclosed)} makes audiences read the post as less authentic. Keep the "
             "disclosure (it is required), but make the photo and voice match your usual posts to offset it.")
    if _value(row, BRAND_MESSAGING) > 0:
        flag("brand_messaging",
             "The caption uses brand-messaging phrases (e.g. 'shop now', 'limited offer'); audiences "
             "find these fake. Say in your own words why you like the product.")
    consistency = _value(row, PHOTO_CONSISTENCY)
    if not math.isnan(consistency) and not math.isnan(norms["photo_consistency_p10"]) and consistency < norms[
        "photo_consistency_p10"]:
        usual = norms["photo_consistency_p10"]
        flag("off_style_photo",
             f"This photo is further from your recent posts' look (similarity {consistency:.2f}) "
             "than 90% of the training posts were from their "
             f"feeds' ({usual:.2f}); posts that break with the feed "
             "feel fake. Reshoot or edit it in your usual look.")
    sharpness = _value(row, SHARPNESS)
    if not math.isnan(sharpness) and not math.isnan(norms["sharpness_p10"]) and sharpness < norms[
        "sharpness_p10"]:
        flag("blurry_photo",
             "The photo is blurrier than 90% of the training posts' photos; use a sharper shot.")
    brightness = _value(row, BRIGHTNESS)
    if not math.isnan(brightness) and brightness < norms["brightness_p5"]:
        flag("dark_photo", "The photo is darker than 95% of the training "
             "posts' photos; brighten it or shoot in better light.")
    duplicates = float(np.nan_to_num(np.nanmax([_value(row, DUPLICATE_IMAGES),
                                                _value(row, DUPLICATE_CAPTIONS), 0.0])))
    if duplicates > 0:
        others = f"{int(duplicates)} other account{'s' if int(duplicates) != 1 else ''}"
        flag("same_post_elsewhere_today",
             f"{others} posted the same photo or caption in the {window_hours:g} hours "
             "before this draft; the same sponsored post on several "
             "feeds the same day feels fake. Post on another "
             "day or make it your own.")
    return flags
