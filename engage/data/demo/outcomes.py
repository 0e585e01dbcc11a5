"""The demo simulator's outcomes: felt_fake, likes and comments of each planned post from its latent
quantities, with the effect sizes docs/demo-data.md lists (each with its source).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engage.data.demo.insights import PostCues, simulate_insights
from engage.data.demo.plans import Account, PhotoPlan, PostPlan, _style_distance

# ----------------------------------------------------------------------------------------------------
# Effect sizes. Literature shares (fractions of followers) are turned into effects with one factor each;
# docs/demo-data.md lists every number with its source.

LIKES_PER_SHARE = 0.8  # log-likes effect per unit of literature share
FOLLOW_REASONS = {"detail": 0.65, "inspiration": 0.61, "image_quality": 0.60}
TYPICAL = {"detail": 0.4, "inspiration": 0.3}  # population means the effects are centred on
OFF_STYLE_LIKES = -0.25  # an off-style photo in a coherent feed
HASHTAG_FREE = 10  # hashtags beyond this many hurt...
HASHTAG_PENALTY = 0.03  # ...by this much each (log likes)
CAPTION_FREE_CHARS = 600  # characters beyond this many hurt...
CAPTION_PENALTY = 0.3  # ...by this much per 500 characters (log likes)
FELT_FAKE_LIKES = -0.4  # the audience that finds a post inauthentic likes it less
SPONSORED_LIKES = -0.1  # sponsored posts reach fewer people
GIVEAWAY_LIKES = 0.3
EVENING_LIKES = 0.08  # amplitude of the time-of-day cycle, peak at 19:00 UTC
WEEKEND_LIKES = 0.05
LIKES_NOISE_SD = 0.25

FAKE_PER_SHARE = 5.0  # felt_fake logit per unit of literature share
FAKE_CUES = {  # cue -> share of followers for whom it makes a sponsored post feel fake
    "off_style": 0.59, "paid": 0.36, "same_day_duplicate": 0.34, "ad": 0.31, "brand_messaging": 0.31,
    "sponsored_tag": 0.15, "partnership_label": 0.15,  # simulator assumptions (no survey figure)
}
FAKE_BASE_SPONSORED = -3.3
FAKE_BASE_ORGANIC = -4.7

COMMENT_BOOSTS = {"question": 0.45, "call_to_action": 0.35, "giveaway": 1.4}
COMMENT_NOISE_SD = 0.3


# ----------------------------------------------------------------------------------------------------
# Outcomes: felt_fake, likes and comments from the latent quantities.


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def felt_fake_logit(*, sponsored: bool, off_style: bool, disclosure: str, same_day_duplicate: bool,
                    brand_messaging: bool) -> float:
    """The log-odds that the audience finds a post inauthentic, from the cues visible in photo and caption."""
    cues = {
        "off_style": off_style, "paid": disclosure == "#paid", "same_day_duplicate": same_day_duplicate,
        "ad": disclosure == "#ad", "brand_messaging": brand_messaging,
        "sponsored_tag": disclosure == "#sponsored",
        "partnership_label": disclosure == "paid partnership",
    }
    base = FAKE_BASE_SPONSORED if sponsored else FAKE_BASE_ORGANIC
    return base + FAKE_PER_SHARE * sum(FAKE_CUES[c] for c, present in cues.items() if present)


def _image_quality(photo: PhotoPlan) -> tuple[float, float, float]:
    sharpness = 1.0 - min(photo.blur / 5.0, 1.0) * 0.9
    exposure_ok = 1.0 - min(abs(math.log(photo.exposure)) / math.log(2.5), 1.0)
    return sharpness, exposure_ok, sharpness * exposure_ok


def _outcomes(seed: int, accounts: list[Account], plans: list[PostPlan], start: pd.Timestamp,
              end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    span = (end - start).total_seconds()
    posts, truth = [], []
    streams = {a.index: np.random.default_rng([seed, 4, a.index]) for a in accounts}
    # The insight counts draw from a stream of their own, so likes, comments and felt_fake stay as they were.
    insight_streams = {a.index: np.random.default_rng([seed, 5, a.index]) for a in accounts}
    for plan in plans:
        account = accounts[plan.account]
        rng = streams[account.index]
        caption, photo = plan.caption, plan.photo
        fraction = (plan.posted_at - start).total_seconds() / span
        followers = int(
            round(account.followers_start * (account.followers_end / account.followers_start) ** fraction))
        detail = caption.detail_sentences / 3
        sharpness, exposure_ok, quality = _image_quality(photo)
        duplicate = plan.campaign_size >= 2
        logit = felt_fake_logit(
            sponsored=plan.sponsored, off_style=plan.off_style, disclosure=caption.disclosure,
            same_day_duplicate=duplicate, brand_messaging=caption.brand_messages > 0,
        )
        probability = _sigmoid(logit)
        felt_fake = bool(rng.random() < probability)
        hour = plan.posted_at.hour + plan.posted_at.minute / 60
        effects = {
            "effect_detail": LIKES_PER_SHARE * FOLLOW_REASONS["detail"] * (detail - TYPICAL["detail"]),
            "effect_inspiration": LIKES_PER_SHARE * FOLLOW_REASONS["inspiration"] * (
                caption.inspiration - TYPICAL["inspiration"]),
            "effect_image_quality": LIKES_PER_SHARE * FOLLOW_REASONS["image_quality"] * (quality - 1.0),
            "effect_off_style": OFF_STYLE_LIKES * plan.off_style,
            "effect_hashtags": -HASHTAG_PENALTY * max(0, caption.n_hashtags - HASHTAG_FREE),
            "effect_caption_length": -CAPTION_PENALTY * max(0, len(caption.text) - CAPTION_FREE_CHARS) / 500,
            "effect_felt_fake": FELT_FAKE_LIKES * felt_fake,
            "effect_sponsored": SPONSORED_LIKES * plan.sponsored,
            "effect_giveaway": GIVEAWAY_LIKES * caption.giveaway,
            "effect_time": EVENING_LIKES * math.cos(2 * math.pi * (hour - 19) / 24)
            + WEEKEND_LIKES * (plan.posted_at.dayofweek >= 5),
        }
        expected = math.log(followers * account.engagement_rate) + sum(effects.values())
        noise = float(rng.normal(0, LIKES_NOISE_SD))
        likes = int(rng.poisson(math.exp(expected + noise)))
        comment_rate = account.comment_rate * math.exp(
            COMMENT_BOOSTS["question"] * caption.question + COMMENT_BOOSTS[
                "call_to_action"] * caption.call_to_action
            + COMMENT_BOOSTS["giveaway"] * caption.giveaway + rng.normal(0, COMMENT_NOISE_SD)
        )
        comments = int(rng.poisson(likes * comment_rate))
        insights, insight_truth = simulate_insights(insight_streams[account.index], PostCues(
            followers=followers, n_hashtags=caption.n_hashtags, time_effect=effects["effect_time"],
            detail=detail,
            inspiration=caption.inspiration, image_quality=quality, off_style=plan.off_style,
            felt_fake=felt_fake,
            sponsored=plan.sponsored, giveaway=caption.giveaway,
            link_in_bio="link in bio" in caption.text.lower(),
        ))
        image = f"images/{account.name}/{plan.post_id}.jpg"
        posts.append({
            "account": account.name, "post_id": plan.post_id, "posted_at": plan.posted_at,
            "caption": caption.text,
            "likes": likes, "comments": comments, "followers": followers, "image": image, "is_video": False,
            "sponsored": plan.sponsored, "felt_fake": felt_fake, **insights,
        })
        truth.append({
            "post_id": plan.post_id, "account": account.name, "niche": account.niche,
            "account_grade": account.look.grade, "post_grade": photo.look.grade,
            "style_distance": _style_distance(photo, account), "off_style": plan.off_style,
            "photo": photo.photo, "zoom": photo.zoom, "careless": plan.careless, "blur_radius": photo.blur,
            "exposure": photo.exposure, "sharpness": sharpness, "exposure_ok": exposure_ok,
            "image_quality": quality,
            "overlay_text": photo.overlay, "detail_sentences": caption.detail_sentences, "detail": detail,
            "inspiration": caption.inspiration, "n_hashtags": caption.n_hashtags,
            "caption_chars": len(caption.text),
            "question": caption.question, "call_to_action": caption.call_to_action,
            "giveaway": caption.giveaway,
            "sponsored": plan.sponsored, "brand": plan.brand, "disclosure": caption.disclosure,
            "brand_messaging": caption.brand_messages > 0, "discount_code": caption.code,
            "campaign_id": plan.campaign, "campaign_size": plan.campaign_size,
            "same_day_duplicate": duplicate,
            "engagement_rate": account.engagement_rate, "followers": followers,
            "felt_fake_logit": logit, "felt_fake_probability": probability, "felt_fake": felt_fake,
            **effects,
            "expected_log_likes": expected, "likes_noise": noise, "comment_rate": comment_rate,
            **insight_truth,
        })
    return pd.DataFrame(posts), pd.DataFrame(truth)
