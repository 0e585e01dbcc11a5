"""The demo simulator's plans: accounts, brand campaigns and every post's plan (time, photo, look, caption,
sponsorship), each drawn from numpy Generators seeded from `seed` per account and per stage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engage.data.demo.vocabulary import (
    BRAND_LOOK,
    BRAND_MESSAGES,
    CALLS_TO_ACTION,
    CAMPAIGN_LINES,
    CODE_WORDS,
    DISCLOSURES,
    FIRST_NAMES,
    GENERIC_EMOJI,
    GENERIC_HASHTAGS,
    GENERIC_QUESTIONS,
    GRADES,
    GREY_PHOTOS,
    INSPIRATIONS,
    NICHES,
    OFF_STYLE_DISTANCE,
    RAMBLES,
    SPONSORED_LINES,
    ZOOM_HABITS,
    Look,
    Niche,
    look_distance,
)

#: Bumped whenever the simulator's output changes for the same options: older directories regenerate.
# 2: insight counts (impressions, reach, saves, shares, profile visits, follows, link clicks)
SIMULATOR_VERSION = 2
CAMPAIGN_POST_SHARE = 0.065  # share of all posts that are campaign posts
OFF_STYLE_RATE = 0.08  # own posts; doubled for own sponsored posts
#: The simulated period ends here (a fixed date, not "now", so that generation is deterministic).
PERIOD_END = pd.Timestamp("2025-03-01T00:00:00Z")


# ----------------------------------------------------------------------------------------------------
# Plans


@dataclass
class Account:
    index: int
    name: str
    niche: str
    followers_start: float
    followers_end: float
    engagement_rate: float
    comment_rate: float
    look: Look
    zoom_habit: str
    photo_weights: dict[str, float]
    hour_mean: float
    hour_sd: float
    cadence: str
    n_posts: int
    hashtag_habit: float
    overload_rate: float
    emoji_habit: float
    detail_habit: float
    ramble_habit: float
    inspiration_rate: float
    question_rate: float
    cta_rate: float
    giveaway_rate: float
    sponsor_rate: float
    careless_rate: float
    signature: str
    jpeg_quality: int


@dataclass
class Caption:
    text: str
    detail_sentences: int = 0
    inspiration: bool = False
    question: bool = False
    call_to_action: bool = False
    giveaway: bool = False
    disclosure: str = ""
    brand_messages: int = 0
    code: str = ""

    @property
    def n_hashtags(self) -> int:
        return len(re.findall(r"#\w+", self.text))


@dataclass
class PhotoPlan:
    photo: str
    center: tuple[float, float]  # crop centre within the photo's subject box, 0..1 each
    zoom: float  # crop side = shorter photo side / zoom
    flip: bool
    look: Look
    angle: float = 0.0  # degrees, counter-clockwise
    blur: float = 0.0  # Gaussian blur radius in pixels at 320 px
    exposure: float = 1.0  # careless under/over-exposure multiplier
    overlay: str = ""


@dataclass
class Campaign:
    index: int
    brand: str
    handle: str
    niche: str
    day: pd.Timestamp
    photo: PhotoPlan
    caption: Caption
    accounts: list[int]
    hours: list[float]


@dataclass
class PostPlan:
    account: int
    posted_at: pd.Timestamp
    photo: PhotoPlan
    caption: Caption
    sponsored: bool
    off_style: bool
    careless: str = ""
    brand: str = ""
    campaign: int = -1
    campaign_size: int = 0
    post_id: str = ""


def _period_start(months: int) -> pd.Timestamp:
    return PERIOD_END - pd.DateOffset(months=months)


def _make_accounts(seed: int, n_accounts: int, posts_per_account: int) -> list[Account]:
    rng = np.random.default_rng([seed, 0])
    niche_order = list(rng.permutation(list(NICHES)))
    used_names: set[str] = set()
    accounts = []
    own_posts = posts_per_account * (1 - CAMPAIGN_POST_SHARE)
    for index in range(n_accounts):
        a = np.random.default_rng([seed, 1, index])
        niche = NICHES[niche_order[index % len(niche_order)]]
        name = (f"{FIRST_NAMES[a.integers(len(FIRST_NAMES))]}."
                f"{niche.handle_words[a.integers(len(niche.handle_words))]}")
        base, suffix = name, 2
        while name in used_names:
            name, suffix = f"{base}{suffix}", suffix + 1
        used_names.add(name)
        start = math.exp(a.uniform(math.log(1_000), math.log(80_000)))  # log-uniform
        end = min(start * (1 + a.uniform(0.02, 0.25)), 100_000.0)
        grade = GRADES[str(a.choice(list(GRADES)))]
        look = replace(grade, brightness=math.exp(a.uniform(-0.15, 0.15)),
                       contrast=math.exp(a.uniform(-0.12, 0.18)))
        photos = list(niche.photos)
        weights = np.array([niche.photos[p] for p in photos],
                           dtype=float) * a.dirichlet(np.full(len(photos), 2.0))
        accounts.append(Account(
            index=index,
            name=name,
            niche=niche.name,
            followers_start=start,
            followers_end=end,
            # Smaller accounts engage more: a mild size slope around a lognormal 3%.
            engagement_rate=float(np.clip(0.03 * (start / 10_000) ** -0.15 * math.exp(a.normal(0, 0.35)),
                                          0.005, 0.15)),
            comment_rate=math.exp(a.uniform(math.log(0.01), math.log(0.05))),
            look=look,
            zoom_habit=str(a.choice(list(ZOOM_HABITS))),
            photo_weights=dict(zip(photos, (weights / weights.sum()).tolist(), strict=True)),
            hour_mean=float(a.uniform(7.5, 21.0)),
            hour_sd=float(a.uniform(0.6, 2.0)),
            cadence=str(a.choice(["steady", "irregular", "bursty"])),
            n_posts=max(3, int(round(own_posts * math.exp(a.normal(0, 0.3))))),
            hashtag_habit=float(a.choice([0.5, 1, 2, 3, 4, 5, 6, 8])),
            overload_rate=float(a.uniform(0.0, 0.12)),
            emoji_habit=float(a.uniform(0.0, 3.0)),
            detail_habit=float(a.uniform(0.2, 2.2)),
            ramble_habit=float(a.choice([0.0, 0.3, 1.0, 3.0])),
            inspiration_rate=float(a.uniform(0.05, 0.6)),
            question_rate=float(a.uniform(0.1, 0.5)),
            cta_rate=float(a.uniform(0.05, 0.4)),
            giveaway_rate=float(a.uniform(0.0, 0.06)),
            sponsor_rate=float(a.uniform(0.06, 0.22)),
            careless_rate=float(a.uniform(0.03, 0.12)),
            signature=re.sub(r"\W", "", name),
            jpeg_quality=int(a.integers(84, 95)),
        ))
    return accounts


def _posting_days(rng: np.random.Generator, account: Account) -> np.ndarray:
    """Fractions of the period (0..1) on which the account posts, by its cadence."""
    n = account.n_posts
    if account.cadence == "steady":
        days = (np.arange(n) + 0.5) / n + rng.normal(0, 0.25 / n, n)
    elif account.cadence == "bursty":
        centres = rng.uniform(0, 1, max(2, n // 8))
        days = rng.choice(centres, n) + rng.normal(0, 0.03, n)
    else:
        days = rng.uniform(0, 1, n)
    return np.sort(np.clip(days, 0.0, 0.999))


def _at_hour(day: pd.Timestamp, hour: float) -> pd.Timestamp:
    return day.normalize() + pd.Timedelta(seconds=int(round(hour * 3600)))


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _fill(rng: np.random.Generator, template: str, thing: str) -> str:
    return template.replace("{thing}", thing).replace("{n}", str(int(rng.integers(2, 40))))


def _hashtags(rng: np.random.Generator, account: Account, niche: Niche, count: int) -> list[str]:
    pool = list(dict.fromkeys(niche.hashtags + GENERIC_HASHTAGS))
    tags = []
    if count > 0 and rng.random() < 0.7:
        tags.append(account.signature)
        count -= 1
    count = min(count, len(pool))
    tags += [pool[i] for i in rng.choice(len(pool), count, replace=False)]
    return ["#" + t for t in tags]


def _brand_message(rng: np.random.Generator, brand_handle: str) -> tuple[str, str]:
    """One brand-messaging phrase and the discount code it names (or '')."""
    template = _pick(rng, BRAND_MESSAGES)
    code = ""
    if "{code}" in template:
        pct = int(rng.choice([10, 15, 20, 25, 30]))
        word = _pick(rng,
                     CODE_WORDS) if rng.random() < 0.6 else re.sub(r"[^A-Z]", "", brand_handle.upper())[:6]
        code = f"{word}{pct}"
        template = template.replace("{code}", code).replace("{pct}", str(pct))
    return template + ("!" if rng.random() < 0.5 else "."), code


def _disclosure(rng: np.random.Generator) -> str:
    labels = list(DISCLOSURES)
    label = labels[int(rng.choice(len(labels), p=np.array(list(DISCLOSURES.values()))))]
    return label or ""


def _assemble(parts: list[str], disclosure: str, handle: str, tags: list[str],
              rng: np.random.Generator) -> str:
    """Caption text from sentences, a disclosure label (at the start or among the hashtags) and hashtags."""
    head = ""
    if disclosure == "paid partnership":
        head = f"Paid partnership with @{handle}. "
    elif disclosure:
        if rng.random() < 0.5:
            head = disclosure + " "
        else:
            tags = [disclosure] + tags
    body = head + " ".join(p for p in parts if p)
    return body + ("\n\n" + " ".join(tags) if tags else "")


def _own_caption(rng: np.random.Generator, account: Account, niche: Niche, accounts: list[Account],
                 brand: tuple[str, str] | None) -> Caption:
    thing = _pick(rng, niche.things)
    parts = [_fill(rng, _pick(rng, niche.openers), thing)]
    parts[0] = parts[0][0].upper() + parts[0][1:]
    n_detail = int(rng.binomial(3, account.detail_habit / 3))
    for i in rng.choice(len(niche.details), n_detail, replace=False):
        parts.append(_fill(rng, niche.details[int(i)], thing))
    for i in rng.choice(len(RAMBLES), min(int(rng.poisson(account.ramble_habit)), 4), replace=False):
        parts.append(RAMBLES[int(i)])
    inspiration = bool(rng.random() < account.inspiration_rate)
    if inspiration:
        parts.append(_pick(rng, INSPIRATIONS))
    caption = Caption(text="", detail_sentences=n_detail, inspiration=inspiration)
    handle = ""
    if brand is not None:
        name, handle = brand
        parts.append(_fill(rng, _pick(rng, SPONSORED_LINES), thing).replace("{handle}", handle))
        caption.disclosure = _disclosure(rng)
        if rng.random() < 0.45:
            message, caption.code = _brand_message(rng, handle)
            parts.append(message)
            caption.brand_messages = 1
    elif rng.random() < 0.04:  # the account's own shop or blog
        parts.append("Link in bio.")
        caption.brand_messages = 1
    caption.giveaway = bool(rng.random() < account.giveaway_rate)
    if caption.giveaway:
        parts.append(
            f"GIVEAWAY! To win a {thing}: follow @{account.name}, like this post and tag two friends "
                     "in the comments. Winner picked on Sunday.")
    caption.question = bool(rng.random() < account.question_rate)
    if caption.question:
        parts.append(_pick(rng, niche.questions + GENERIC_QUESTIONS))
    caption.call_to_action = bool(rng.random() < account.cta_rate)
    if caption.call_to_action:
        parts.append(_pick(rng, CALLS_TO_ACTION))
    if rng.random() < 0.12 and len(accounts) > 1:
        friend = accounts[int(rng.integers(len(accounts)))]
        if friend.index != account.index:
            parts.append(f"With @{friend.name}.")
    n_emoji = int(rng.poisson(account.emoji_habit))
    if n_emoji:
        pool = niche.emoji + GENERIC_EMOJI
        parts[-1] += " " + "".join(pool[int(i)] for i in rng.integers(len(pool), size=min(n_emoji, 6)))
    if rng.random() < account.overload_rate:
        n_tags = int(rng.integers(18, 31))
    else:
        n_tags = min(int(rng.poisson(account.hashtag_habit)), 10)
    tags = _hashtags(rng, account, niche, max(0, n_tags - (1 if caption.disclosure.startswith("#") else 0)))
    caption.text = _assemble(parts, caption.disclosure, handle, tags, rng)
    return caption


def _campaign_caption(rng: np.random.Generator, niche: Niche, brand: str, handle: str) -> Caption:
    thing = _pick(rng, niche.things)
    parts = [_fill(rng, _pick(rng, CAMPAIGN_LINES), thing).replace("{handle}",
                                                                   handle).replace("{brand}", brand)]
    n_detail = int(rng.integers(0, 3))
    for i in rng.choice(len(niche.details), n_detail, replace=False):
        parts.append(_fill(rng, niche.details[int(i)], thing))
    caption = Caption(text="", detail_sentences=n_detail, disclosure=_disclosure(rng))
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        message, code = _brand_message(rng, handle)
        if message not in parts:
            parts.append(message)
            caption.brand_messages += 1
            caption.code = caption.code or code
    caption.call_to_action = bool(rng.random() < 0.3)
    if caption.call_to_action:
        parts.append(_pick(rng, CALLS_TO_ACTION))
    tags = ["#" + handle] + ["#" + niche.hashtags[int(i)]
                             for i in rng.choice(len(niche.hashtags), int(rng.integers(2, 7)), replace=False)]
    if caption.disclosure.startswith("#"):
        tags = tags[:-1]
    caption.text = _assemble(parts, caption.disclosure, handle, tags, rng)
    return caption


def _overlay_text(rng: np.random.Generator, caption: Caption, probability: float) -> str:
    """Text drawn on a sponsored photo: its discount code or its disclosure label, mirroring the caption."""
    if rng.random() >= probability:
        return ""
    if caption.code:
        return caption.code
    return {"#ad": "#ad", "#paid": "#paid", "#sponsored": "#sponsored",
            "paid partnership": "Paid partnership"}.get(caption.disclosure, "")


def _photo_plan(rng: np.random.Generator, account: Account, off_style: bool) -> PhotoPlan:
    photos = list(account.photo_weights)
    photo = photos[int(rng.choice(len(photos), p=np.array(list(account.photo_weights.values()))))]
    low, high = ZOOM_HABITS[account.zoom_habit]
    return PhotoPlan(
        photo=photo, center=(float(rng.uniform()), float(rng.uniform())), zoom=float(rng.uniform(low, high)),
        flip=bool(rng.random() < 0.5),
        look=_post_look(rng, account, off_style, colour=photo not in GREY_PHOTOS),
        angle=float(rng.uniform(-10, 10)),
    )


def _post_look(rng: np.random.Generator, account: Account, off_style: bool, *, colour: bool) -> Look:
    base = account.look
    if off_style:
        for _ in range(100):
            grade = GRADES[_pick(rng, [g for g in GRADES if g != base.grade])]
            shift = rng.choice([-1, 1]) * rng.uniform(0.18, 0.35)
            look = replace(grade, brightness=base.brightness * math.exp(shift), contrast=base.contrast)
            if look_distance(look, base, colour=colour) >= OFF_STYLE_DISTANCE * 1.3:
                return look
        raise RuntimeError(f"no off-style look found for grade {base.grade}")  # unreachable with GRADES above
    return replace(
        base,
        temperature=base.temperature + rng.normal(0, 0.08),
        saturation=max(0.0, base.saturation + rng.normal(0, 0.05)) if base.saturation > 0 else 0.0,
        brightness=base.brightness * math.exp(rng.normal(0, 0.03)),
        contrast=base.contrast * math.exp(rng.normal(0, 0.02)),
    )


def _style_distance(photo: PhotoPlan, account: Account) -> float:
    """How far a post's look is from its account's usual look, as it shows on that photo."""
    return look_distance(photo.look, account.look, colour=photo.photo not in GREY_PHOTOS)


def _careless(rng: np.random.Generator, account: Account, photo: PhotoPlan) -> str:
    if rng.random() >= account.careless_rate:
        return ""
    kind = str(rng.choice(["blur", "blur", "dark", "overexposed"]))
    if kind == "blur":
        photo.blur = float(rng.uniform(2.5, 5.0))
    elif kind == "dark":
        photo.exposure = float(rng.uniform(0.35, 0.55))
    else:
        photo.exposure = float(rng.uniform(1.7, 2.3))
    return kind


def _make_campaigns(seed: int, accounts: list[Account], start: pd.Timestamp,
                    end: pd.Timestamp) -> list[Campaign]:
    rng = np.random.default_rng([seed, 2])
    total = sum(a.n_posts for a in accounts) / (1 - CAMPAIGN_POST_SHARE)
    n_campaigns = max(1, int(round(CAMPAIGN_POST_SHARE * total / 3.5)))
    days = (end - start).days
    campaigns = []
    for index in range(n_campaigns):
        lead = accounts[int(rng.integers(len(accounts)))]
        niche = NICHES[lead.niche]
        brand, handle = niche.brands[int(rng.integers(len(niche.brands)))]
        size = int(rng.integers(2, min(5, len(accounts)) + 1))
        weights = np.array([4.0 if a.niche == niche.name else 1.0 for a in accounts])
        weights[lead.index] = 0.0
        others = rng.choice(len(accounts), size - 1, replace=False, p=weights / weights.sum())
        members = [lead.index] + [int(i) for i in others]
        day = start.normalize() + pd.Timedelta(days=int(rng.integers(1, max(2, days - 1))))
        hours: list[float] = []
        for member in members:
            hour = float(np.clip(accounts[member].hour_mean + rng.normal(0, 0.5), 6.0, 23.0))
            while any(abs(hour - h) < 0.5 for h in hours):  # different hours on the same day
                hour = 6.0 + (hour - 6.0 + 0.75) % 17.5
            hours.append(hour)
        photos = list(niche.photos)
        photo = photos[int(rng.choice(len(photos),
                                      p=np.array(list(niche.photos.values())) / sum(niche.photos.values())))]
        caption = _campaign_caption(rng, niche, brand, handle)
        plan = PhotoPlan(
            photo=photo, center=(float(rng.uniform()), float(rng.uniform())),
            zoom=float(rng.uniform(1.3, 1.9)),
            flip=False, look=BRAND_LOOK,
        )
        plan.overlay = _overlay_text(rng, caption, 0.5)
        campaigns.append(Campaign(index, brand, handle, niche.name, day, plan, caption, members, hours))
    return campaigns


def _plan_posts(seed: int, accounts: list[Account], campaigns: list[Campaign], start: pd.Timestamp,
                end: pd.Timestamp) -> list[PostPlan]:
    span = end - start
    plans: list[PostPlan] = []
    for account in accounts:
        rng = np.random.default_rng([seed, 3, account.index])
        niche = NICHES[account.niche]
        own = []
        for fraction in _posting_days(rng, account):
            day = start + span * float(fraction)
            hour = float(np.clip(rng.normal(account.hour_mean, account.hour_sd), 5.0, 23.9))
            sponsored = bool(rng.random() < account.sponsor_rate)
            off_style = bool(rng.random() < OFF_STYLE_RATE * (2 if sponsored else 1))
            photo = _photo_plan(rng, account, off_style)
            careless = _careless(rng, account, photo)
            brand = niche.brands[int(rng.integers(len(niche.brands)))] if sponsored else None
            caption = _own_caption(rng, account, niche, accounts, brand)
            if sponsored:
                photo.overlay = _overlay_text(rng, caption, 0.35)
            own.append(PostPlan(
                account=account.index, posted_at=min(_at_hour(day, hour), end - pd.Timedelta(seconds=1)),
                photo=photo, caption=caption, sponsored=sponsored, careless=careless,
                off_style=_style_distance(photo, account) > OFF_STYLE_DISTANCE,
                brand=brand[0] if brand else "", campaign_size=1 if sponsored else 0,
            ))
        for campaign in campaigns:
            if account.index in campaign.accounts:
                hour = campaign.hours[campaign.accounts.index(account.index)]
                off_style = _style_distance(campaign.photo, account) > OFF_STYLE_DISTANCE
                own.append(PostPlan(
                    account=account.index, posted_at=_at_hour(campaign.day, hour), photo=campaign.photo,
                    caption=campaign.caption, sponsored=True, off_style=off_style, brand=campaign.brand,
                    campaign=campaign.index, campaign_size=len(campaign.accounts),
                ))
        own.sort(key=lambda p: p.posted_at)
        for number, plan in enumerate(own, start=1):
            plan.post_id = f"{account.name}-{number:03d}"
        plans += own
    return plans
