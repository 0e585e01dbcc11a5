"""What the model knows about a draft's account, and answers that say it.

Three cases where the trained count models alone would answer with numbers nobody could stand behind:

* **A draft dated before the account's first stored post.** The account is known, but none of its posts
  comes before the draft, so it used to be scored as an unknown account (population priors, and the flag
  `unknown_account`, which was false). `early_context` gives it the account's earliest stored posts as its
  history, re-dated (spacing kept) to end one usual gap before the draft: the draft is scored at the account's
  level of that time, and the flag `before_known_history` says so.
* **An account the model does not know, sent without history.** The count models' own fallback is a
  line fitted on log followers over all training posts, which extrapolates wildly (a 2,400-follower account
  scored with 12 times its followers in likes by a model of 100M-follower accounts). `SimilarAccounts`
  replaces that level by the one of the training accounts closest in follower count: their mean count per
  follower (in log1p space), applied to the draft's followers. Outside the training range of followers the
  answer says so (`followers_outside_training`) and its ranges are widened.
* **An expected count outside what the account's own posts support** (below every one of its posts, say):
  `within_own_range` keeps the expected value between the lowest and the highest count of the account's
  posts the draft is scored against (its stored earlier posts or the history sent), when it has at least
  `MIN_OWN_POSTS` of them, approaching those ends smoothly so that drafts keep their order (`squeeze`); the
  range is stretched to keep containing the expected value.

All of it works on the answers' log1p values and the context the draft was scored with; the count models
themselves are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Training accounts that make the level of an unknown account.
NEIGHBOURS = 5
#: Own posts an account needs before its expected counts are kept inside their range.
MIN_OWN_POSTS = 3
#: Widening (log1p units) of an extrapolated range: at least this, or the spread between accounts' rates,
#: plus `EXTRAPOLATION_WIDENING` per log unit of followers outside the training range.
MIN_WIDENING = 0.5
EXTRAPOLATION_WIDENING = 0.25


def early_context(posts: pd.DataFrame, when: pd.Timestamp) -> pd.DataFrame:
    """The account's earliest stored posts (`posts`, oldest first, all after `when`) re-dated so that the last
    of them comes one usual gap (their median spacing, else a day) before `when`; spacing and order are
    kept."""
    times = posts["posted_at"]
    gaps = times.diff().dropna()
    gap = gaps.median() if len(gaps) and gaps.median() > pd.Timedelta(0) else pd.Timedelta(days=1)
    shifted = posts.copy()
    shifted["posted_at"] = times + ((when - gap) - times.max())
    return shifted


@dataclass
class SizeLevel:
    """The level of an unknown account's count, from the training accounts closest in follower count."""

    level: float  # log1p count
    neighbours: int  # accounts it comes from
    low_followers: int  # their follower counts
    high_followers: int
    range_low: int  # the follower counts of all training accounts
    range_high: int
    widening: float  # log1p units added to each side of the range (0 inside the training range)

    @property
    def outside(self) -> bool:
        return self.widening > 0


class SimilarAccounts:
    """Each training account's follower count and mean log1p count per follower, per count target, from the
    bundle's stored posts (every account's last posts): what an unknown account is scored from."""

    def __init__(self, context: pd.DataFrame, targets: dict[str, str]):
        """`targets`: count target -> its column in the posts table."""
        followers = pd.to_numeric(context["followers"], errors="coerce").astype(float)
        grouped = pd.DataFrame({"account": context["account"].astype(str), "followers": followers})
        self.followers = grouped.groupby("account")["followers"].last()  # NaN when the account has none
        self.rates: dict[str, pd.Series] = {}
        for name, column in targets.items():
            if column not in context:
                continue
            values = np.log1p(pd.to_numeric(context[column], errors="coerce").astype(float))
            mean = pd.Series(values.to_numpy(), index=context["account"].astype(str)).groupby(level=0).mean()
            rate = (mean - np.log1p(self.followers.reindex(mean.index))).dropna()
            if len(rate):
                self.rates[name] = rate

    def level(self, target: str, followers: float | None) -> SizeLevel | None:
        """The level of `target` for an account of `followers`; None without followers or without accounts."""
        rate = self.rates.get(target)
        if followers is None or rate is None or not np.isfinite(followers):
            return None
        known = np.log1p(self.followers.reindex(rate.index).to_numpy(dtype=float))
        own = float(np.log1p(followers))
        nearest = np.argsort(np.abs(known - own), kind="stable")[:NEIGHBOURS]
        lo, hi = float(known.min()), float(known.max())
        outside = max(lo - own, own - hi, 0.0)
        spread = float(np.std(rate.to_numpy())) if len(rate) > 1 else 0.0
        widening = (max(MIN_WIDENING, spread) + EXTRAPOLATION_WIDENING * outside) if outside > 0 else 0.0
        return SizeLevel(
            level=own + float(np.median(rate.to_numpy()[nearest])),
            neighbours=len(nearest),
            low_followers=int(round(np.expm1(known[nearest].min()))),
            high_followers=int(round(np.expm1(known[nearest].max()))),
            range_low=int(round(np.expm1(lo))),
            range_high=int(round(np.expm1(hi))),
            widening=widening,
        )


def rebase(prediction: dict[str, float], reference: float, size: SizeLevel) -> dict[str, float]:
    """A log1p prediction made on `reference` (the model's own level) moved onto the similar accounts' level,
    its range widened by `size.widening` on each side (the
    account's level moves with it; the uplift stays)."""
    shift = size.level - reference
    out = dict(prediction)
    out.update({
        "expected": prediction["expected"] + shift,
        "low": prediction["low"] + shift - size.widening,
        "high": prediction["high"] + shift + size.widening,
    })
    if "level" in prediction:
        out["level"] = prediction["level"] + shift
    return out


def within_own_range(prediction: dict[str, float], own: np.ndarray) -> dict[str, float]:
    """The log1p prediction with its expected value kept between the account's lowest and highest count
    (`own`: counts of its posts the draft is scored against; NaN where unknown), when it has `MIN_OWN_POSTS`.
    The account's level (when the model has one) is kept inside the same range, and the uplift is what remains
    between the two, so "your usual" and "this draft: +x%" agree with the expected figure."""
    own = own[np.isfinite(own)]
    if len(own) < MIN_OWN_POSTS:
        return prediction
    lo, hi = float(np.log1p(own.min())), float(np.log1p(own.max()))
    expected = squeeze(prediction["expected"], lo, hi)
    out = dict(prediction)
    out.update({
        "expected": expected,
        "low": min(prediction["low"], expected),
        "high": max(prediction["high"], expected),
    })
    if "level" in prediction:
        out["level"] = squeeze(prediction["level"], lo, hi)
        out["uplift"] = expected - out["level"]
    return out


#: Share of the account's own range (log1p) over which expected values approach its ends smoothly.
EDGE_SHARE = 0.2


def squeeze(x: float, lo: float, hi: float) -> float:
    """`x` kept inside [lo, hi] without losing order: unchanged in the middle, approaching the ends smoothly
    (exponentially) within `EDGE_SHARE` of the range of them, so that two drafts the model tells apart stay
    apart (a plain clip would give every draft past the end the same figure, and a comparison a tie)."""
    width = EDGE_SHARE * (hi - lo)
    if width <= 1e-9:
        return float(min(max(x, lo), hi))
    if x > hi - width:
        return float(hi - width * np.exp(-(x - (hi - width)) / width))
    if x < lo + width:
        return float(lo + width * np.exp(-((lo + width) - x) / width))
    return float(x)


def knowledge_flags(
    *,
    account: str,
    known: bool,
    early: tuple[pd.Timestamp, int] | None,
    followers: float | None,
    sizes: dict[str, SizeLevel],
    history_sent: bool = False,
) -> list[dict[str, str]]:
    """The flags that say what the model knows about the account, each true for the case it is raised in."""
    flags = []
    if early is not None:
        first, n = early
        flags.append(
            {
                "code": "before_known_history",
                "message": (
                    f"This draft is dated before {account}'s first post "
                    f"known to the model ({first:%Y-%m-%d}); it is scored "
                    f"at the account's level then: its earliest {n} stored "
                    f"post{'s' if n != 1 else ''} serve as its history."
                ),
            }
        )
    if known:
        return flags
    size = next(iter(sizes.values()), None)
    none_sent = "the history sent has no post before the draft" if history_sent else "none was sent"
    if size is None:
        how = (
            "no follower count was sent"
            if followers is None
            else "the training data has no follower counts to compare it with"
        )
        flags.append(
            {
                "code": "unknown_account",
                "message": (
                    "This account has no history in the model and "
                    f"{none_sent}, and {how}: the prediction is the typical "
                    "level of the training posts. Send the account's "
                    "recent posts (photos, captions, counts) as history "
                    "for a personal prediction."
                ),
            }
        )
        return flags
    others = (
        f"the {size.neighbours} training accounts closest in size ({size.low_followers:,}"
        f"{'' if size.low_followers == size.high_followers else f' to {size.high_followers:,}'} followers)"
    )
    flags.append(
        {
            "code": "unknown_account",
            "message": (
                "This account has no history in the model and "
                f"{none_sent}: its counts are those of {others}, per "
                f"follower, for its {int(followers or 0):,} followers. "
                "Send the account's recent posts (photos, captions, "
                "counts) as history for a personal prediction."
            ),
        }
    )
    if size.outside:
        side = "fewer" if (followers or 0) < size.range_low else "more"
        flags.append(
            {
                "code": "followers_outside_training",
                "message": (
                    f"{int(followers or 0):,} followers is {side} than any account the model was trained on "
                    f"({size.range_low:,} to {size.range_high:,}): the "
                    "counts are extrapolated from the nearest accounts' "
                    "counts per follower, and their ranges are widened accordingly."
                ),
            }
        )
    return flags
