"""Caption hand features on hand-written captions (the text embedders: tests/embed/test_text.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engage.errors import DataError
from engage.features.caption import (
    CAPTION_COLUMNS,
    LANGUAGE_CODES,
    caption_features,
    caption_languages,
    normalise_caption,
)


def one(caption: str, **kwargs) -> dict[str, float]:
    return caption_features([caption], **kwargs).iloc[0].to_dict()


def test_columns_are_all_numeric_one_row_per_caption_in_order():
    frame = caption_features(["first #a", "", "third #a #b"], language=False)
    assert list(frame.columns) == CAPTION_COLUMNS
    assert list(frame.index) == [0, 1, 2]
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame["hashtags"].tolist() == [1.0, 0.0, 2.0]


def test_counts_on_a_hand_written_caption():
    row = one(
        "Sunny day at the beach with @anna.b and @tom_x! Who's coming next time? Any tips?? #beach #summer")
    assert row["caption_chars"] == 97
    assert row["caption_words"] == 13  # 17 tokens less 2 mentions and 2 hashtags
    assert row["hashtags"] == 2
    assert row["mentions"] == 2
    assert row["questions"] == 2  # "??" is one question
    assert row["exclamation_ratio"] == pytest.approx(1 / 97)
    assert row["emojis"] == 0


def test_email_addresses_are_not_mentions_and_url_fragments_are_not_hashtags():
    row = one("write to anna@example.com or see example.com/page#section and &#39; #real")
    assert row["mentions"] == 0
    assert row["hashtags"] == 1


def test_ad_tag_matches_whole_tags_only():
    assert one("Loving it #ad")["has_ad"] == 1
    assert one("#AD loving it")["has_ad"] == 1
    assert one("Great trip #adventure #adidas #ad_free")["has_ad"] == 0
    assert one("reading about ad campaigns")["has_ad"] == 0  # the word, not the tag
    assert one("##ad x#ad")["has_ad"] == 0


def test_disclosure_tags_are_separate_features_with_a_total():
    row = one("New drop! #paid #sp Paid partnership with @brand #gifted")
    assert (row["has_ad"], row["has_paid"], row["has_sponsored"]) == (0, 1, 1)
    assert (row["has_paid_partnership"], row["has_partner_tag"]) == (1, 1)
    assert row["disclosures"] == 4
    assert one("#sponsored")["has_sponsored"] == 1
    assert one("#sponsor")["has_sponsored"] == 1
    assert one("#paidpartnership")["has_paid_partnership"] == 1
    assert one("#collab with my fave")["has_partner_tag"] == 1
    assert one("#sponsorship #paidoff #partnerincrime")["disclosures"] == 0


def test_discount_codes_are_counted_and_dress_code_is_not():
    assert one("Use code SAVE20 at checkout")["discount_codes"] == 1
    assert one("code ANNA15 for 15% off everything")["discount_codes"] == 2
    assert one("promo code in my bio, coupon inside")["discount_codes"] == 2
    assert one("The dress code was black tie")["discount_codes"] == 0
    assert one("30 percent off today")["discount_codes"] == 1


def test_calls_to_action_giveaway_and_brand_phrases():
    row = one("GIVEAWAY time! Tag a friend, comment below and "
              "double tap. Link in bio to shop. Shop now, limited offer")
    assert row["giveaway_phrases"] == 1
    assert row["cta_phrases"] == 4  # tag a friend, comment below, double tap, link in bio
    assert row["brand_phrases"] == 3  # link in bio to shop, shop now, limited offer
    assert one("The winner of the contest gets a prize")["giveaway_phrases"] == 3
    assert one("I will tagalong and shopnow")["cta_phrases"] + one("shopnow")["brand_phrases"] == 0


def test_emoji_are_counted_with_sequences_once():
    # thumbs up + skin tone, a family ZWJ sequence, a flag, a red heart with variation selector
    assert one("hi 👍🏽 and 👨‍👩‍👧 in 🇫🇷 ❤️")["emojis"] == 4
    assert one("😀😀😀")["emojis"] == 3
    assert one("plain text, #1 & 2 * 3")["emojis"] == 0


def test_uppercase_ratio_counts_cased_letters_only():
    assert one("ABC def")["uppercase_ratio"] == pytest.approx(0.5)
    assert one("ÉTÉ été")["uppercase_ratio"] == pytest.approx(0.5)
    assert one("مرحبا 123")["uppercase_ratio"] == 0.0  # Arabic has no case
    assert one("")["uppercase_ratio"] == 0.0


def test_empty_caption_is_all_zero_with_unknown_language():
    row = one("")
    assert row["language"] != row["language"]  # NaN
    assert all(value == 0 for key, value in row.items() if key != "language")


def test_language_is_detected_offline():
    codes = caption_languages([
        "Neuer Look für den Sommer, was meint ihr dazu?",
        "Nuevo look para el verano, ¿qué opinan ustedes?",
        "I love this new dress so much, it is perfect for summer",
        "😀😀😀 #️⃣ 123",
        "",
    ])
    assert codes == ["de", "es", "en", "und", "und"]
    frame = caption_features(["Neuer Look für den Sommer, was meint ihr dazu?", "😀"])
    assert frame["language"].iloc[0] == LANGUAGE_CODES.index("de")
    assert np.isnan(frame["language"].iloc[1])


def test_hostile_captions_are_handled():
    long_caption = "a" * 100_000
    many_tags = " ".join(f"#tag{i}" for i in range(10_000))
    spaces_after_code = "code" + " " * 50_000 + "x" + " tag" * 10_000
    frame = caption_features([long_caption, many_tags, "😀" * 5_000, "שלום עולם! مرحبا بالعالم؟", "",
                              spaces_after_code])
    assert frame["caption_chars"].tolist()[:2] == [100_000, len(many_tags)]
    assert frame["hashtags"].iloc[1] == 10_000
    assert frame["caption_words"].iloc[1] == 0  # hashtags are not words of text
    assert frame["emojis"].iloc[2] == 5_000
    assert frame["questions"].iloc[3] == 1
    assert frame["exclamation_ratio"].iloc[3] == pytest.approx(1 / 25)
    assert frame["discount_codes"].iloc[5] == 0
    assert np.isfinite(frame.drop(columns="language").to_numpy()).all()


def test_a_caption_that_is_not_text_is_an_error_naming_the_row():
    with pytest.raises(DataError, match=r"row 2, field 'caption'.*not text"):
        caption_features(["fine", None])


def test_normalise_caption_ignores_case_width_and_spacing():
    assert normalise_caption("  Hello\tWORLD  ｆｕｌｌ ") == normalise_caption("hello world full")


def test_large_tables_are_featurised_in_parallel_chunks_with_the_same_rows(monkeypatch):
    from engage.features import caption as caption_module

    captions = [f"Morning light #sea @friend {i}! Link in bio, code SAVE{i} 😊" if i % 3 else ""
                for i in range(30)]
    serial = caption_module.caption_features(captions)
    monkeypatch.setattr(caption_module, "PARALLEL_ROWS", 10)
    monkeypatch.setattr(caption_module, "PARALLEL_CHUNK", 7)
    monkeypatch.setattr(caption_module, "_cpus", lambda: 2)
    chunked = caption_module.caption_features(captions)
    pd.testing.assert_frame_equal(chunked, serial)
    assert list(chunked.index) == list(range(30))
