"""The demo's insight counts: reach, impressions, saves, shares, profile visits, follows and link clicks.

Drawn after likes and comments from a stream of their own (`[seed, 5, account]`), so adding them leaves every
earlier outcome of the simulator as it was. The chain follows how the counts arise on Instagram: a post is
shown to a share of the followers and, through hashtags, to others (reach); some see it more than once
(impressions); of those reached, some save it (useful content), share it (inspiring content) or visit the
profile; of the visitors some follow (reasons to follow: detail, inspiration, good images; a coherent
feed) and some tap the link in bio. docs/demo-data.md lists every number with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Share of followers a post reaches before any effect (our assumption; organic reach of a feed post).
REACH_RATE = 0.30
#: Discovery through hashtags: +0.025 log-reach per hashtag up to 10 (about +28% at 10 tags), the same
#: stuffing penalty as likes beyond (-0.03 per tag). Size: our assumption, in line with the 23% median share
#: of impressions "From Hashtags" in one_account_insights_176.
HASHTAG_REACH, HASHTAG_REACH_FREE, HASHTAG_REACH_PENALTY = 0.025, 10, 0.03
#: Timing acts on reach through who is online: 1.5x the likes' time-of-day and weekend effect (assumption).
TIME_REACH = 1.5
#: Sponsored posts reach fewer people (as for likes; assumption).
SPONSORED_REACH = -0.1
REACH_NOISE_SD = 0.25
#: Impressions per account reached: 1.25 x exp(N(0, 0.1))
#: (assumption; Meta reports both, impressions >= reach).
FREQUENCY, FREQUENCY_SD = 1.25, 0.1

#: Per account reached. Saves: 2.1% and shares: 0.13% of impressions are the medians of
#: one_account_insights_176; profile visits 0.49%; here they are per account reached (our choice).
SAVE_RATE, SHARE_RATE, VISIT_RATE = 0.021, 0.0013, 0.005
#: log-count effect per unit of the survey share (as likes use 0.8): saving and sharing are deliberate acts,
#: so the content effects are made stronger (assumption).
PER_SHARE = 1.5
#: Why followers follow (the project brief's survey shares, as for likes): detail 65%, inspiration 61%,
#: good images 60%. Useful (detailed) content is saved, inspiring content shared; each also carries half of
#: the other (assumption).
USEFUL, INSPIRING, IMAGES = 0.65, 0.61, 0.60
TYPICAL_DETAIL, TYPICAL_INSPIRATION = 0.4, 0.3  # population means the effects are centred on (as for likes)
GIVEAWAY_SHARES = 0.7  # "tag two friends" giveaways are passed on (assumption)
# a post the audience finds fake is saved, shared and visited less (as for likes; assumption)
FELT_FAKE_INSIGHTS = -0.4
INSIGHT_NOISE_SD = 0.3
#: Of the profile visitors, 39% follow (median follows / profile visits in one_account_insights_176); the
#: log-odds move with the reasons to follow (0.8 per unit of share, as likes) and drop 0.5 for a post off the
#: feed's style (feeds are followed for their look; assumption).
FOLLOW_RATE, FOLLOW_PER_SHARE, OFF_STYLE_FOLLOW = 0.39, 0.8, -0.5
#: Of the profile visitors, 3% tap the link in bio, 8x as
#: many when the caption says "link in bio" (assumption).
LINK_RATE, LINK_IN_BIO = 0.03, math.log(8.0)


@dataclass(frozen=True)
class PostCues:
    """What the insight counts of one post depend on (all known to the simulator when it draws them)."""

    followers: float
    n_hashtags: int
    time_effect: float  # the likes' time-of-day + weekend effect of this post
    detail: float  # detail sentences / 3
    inspiration: bool
    image_quality: float
    off_style: bool
    felt_fake: bool
    sponsored: bool
    giveaway: bool
    link_in_bio: bool


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def simulate_insights(rng: np.random.Generator, cues: PostCues) -> tuple[dict[str, int], dict[str, float]]:
    """(the post's insight counts, the latent quantities behind them for truth.parquet)."""
    tags = cues.n_hashtags
    discovery = HASHTAG_REACH * min(tags, HASHTAG_REACH_FREE) - HASHTAG_REACH_PENALTY * max(
        0, tags - HASHTAG_REACH_FREE)
    log_reach = (math.log(cues.followers * REACH_RATE) + discovery + TIME_REACH * cues.time_effect
                 + SPONSORED_REACH * cues.sponsored)
    reach = int(rng.poisson(math.exp(log_reach + rng.normal(0, REACH_NOISE_SD))))
    impressions = reach + int(rng.poisson(reach * max(FREQUENCY * math.exp(rng.normal(0, FREQUENCY_SD)) - 1.0,
                                                      0.0)))

    useful = cues.detail - TYPICAL_DETAIL
    inspiring = float(cues.inspiration) - TYPICAL_INSPIRATION
    images = cues.image_quality - 1.0
    fake = FELT_FAKE_INSIGHTS * cues.felt_fake
    effect_saves = PER_SHARE * (USEFUL * useful + 0.5 * INSPIRING * inspiring + IMAGES * images) + fake
    effect_shares = PER_SHARE * (0.5 * USEFUL * useful + INSPIRING * inspiring + IMAGES
                                 * images) + fake + GIVEAWAY_SHARES * cues.giveaway
    effect_visits = 0.8 * (USEFUL * useful + INSPIRING * inspiring + IMAGES * images) + fake
    saves = int(rng.poisson(reach * SAVE_RATE * math.exp(effect_saves + rng.normal(0, INSIGHT_NOISE_SD))))
    shares = int(rng.poisson(reach * SHARE_RATE * math.exp(effect_shares + rng.normal(0, INSIGHT_NOISE_SD))))
    visits = int(rng.poisson(reach * VISIT_RATE * math.exp(effect_visits + rng.normal(0, INSIGHT_NOISE_SD))))
    follow_logit = (math.log(FOLLOW_RATE / (1 - FOLLOW_RATE)) + FOLLOW_PER_SHARE * (
        USEFUL * useful + INSPIRING * inspiring + IMAGES * images)
                    + OFF_STYLE_FOLLOW * cues.off_style + fake)
    follow_probability = _sigmoid(follow_logit)
    follows = int(rng.binomial(visits, follow_probability))
    link_probability = min(LINK_RATE * math.exp(LINK_IN_BIO * cues.link_in_bio), 1.0)
    link_clicks = int(rng.binomial(visits, link_probability))
    counts = {"impressions": impressions, "reach": reach, "saves": saves, "shares": shares,
              "profile_visits": visits,
              "follows": follows, "link_clicks": link_clicks}
    truth = {"expected_log_reach": log_reach, "reach_hashtags": discovery, "saves_log_effect": effect_saves,
             "shares_log_effect": effect_shares, "profile_visits_log_effect": effect_visits,
             "follow_probability": follow_probability, "link_probability": link_probability}
    return counts, truth
