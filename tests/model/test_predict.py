"""Scoring a draft (engage/model/predict.py) on the session's smoke model: context, errors, advice."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engage.errors import DraftError
from engage.model.bundle import EngageModel
from engage.model.draft import Draft, HistoryPost
from engage.model.predict import draft_context


@pytest.fixture(scope="module")
def model(trained) -> EngageModel:
    return EngageModel.load(trained[1])


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def _history_of(model: EngageModel, account: str, n: int = 8) -> list[HistoryPost]:
    """An account's last posts from the bundle's context, as the history a new account would send."""
    own = model.context_posts[model.context_posts["account"] == account].tail(n)
    return [HistoryPost(caption=row.caption, posted_at=row.posted_at.isoformat(), likes=int(row.likes),
                        comments=None if row.comments is None or row.comments != row.comments else int(row.comments))
            for row in own.itertuples()]


def test_a_bad_history_photo_is_named_by_its_place_in_the_request_not_after_sorting(model):
    good_earlier = HistoryPost(caption="first", image=_jpeg((200, 120, 40)), posted_at="2029-12-01T10:00:00Z", likes=50)
    bad_later = HistoryPost(caption="second", image=b"not a photo", posted_at="2029-12-20T10:00:00Z", likes=60)
    # Request order: the bad (later) post first; sorted by time it is second.
    draft = Draft(account="new.account", caption="hello", posted_at="2030-01-01T09:00:00Z",
                  history=[bad_later, good_earlier])
    with pytest.raises(DraftError, match="not a readable image") as caught:
        model.score(draft)
    assert caught.value.field == "history[0].image"


def test_history_posts_after_the_draft_are_left_out_of_its_context(model):
    account = model.context_posts["account"].iloc[0]
    history = _history_of(model, account, 4)
    future = HistoryPost(caption="later", posted_at="2031-01-01T00:00:00Z", likes=10**6)
    draft = Draft(account="new.account", caption="hello", posted_at="2030-01-01T09:00:00Z", history=[*history, future])
    posts, vectors, known = draft_context(model, draft, draft.posted_at)
    own = posts[posts["account"] == "new.account"]
    assert known and len(own) == len(history) + 1  # the history and the draft, not the later post
    assert own["likes"].max() < 10**6 and len(vectors) == len(posts)


def test_extra_hashtags_never_raise_expected_likes_for_a_new_account_described_by_its_history(model):
    # Before the raw counts were constrained, 2 of these 20 drafts gained likes from 25 more hashtags (e.g.
    # 20.20 -> 20.45 from a 3-post history) while the flags warned against them.
    caption = "Golden hour walk through the old town, every corner a story"
    stuffed = caption + " " + " ".join(f"#tag{i}" for i in range(25))
    when = "2030-01-01T18:00:00Z"
    rises = []
    for account in sorted(model.context_posts["account"].unique()):
        for n in (3, 8):
            history = _history_of(model, account, n)
            plain = model.score(Draft(account="new.account", caption=caption, posted_at=when, history=history))
            tagged = model.score(Draft(account="new.account", caption=stuffed, posted_at=when, history=history))
            assert "too_many_hashtags" in {f["code"] for f in tagged["flags"]}
            if tagged["likes"]["expected"] > plain["likes"]["expected"]:
                rises.append((account, n, plain["likes"]["expected"], tagged["likes"]["expected"]))
    assert rises == []


def test_factors_say_the_drafts_own_value(model):
    account = model.context_posts["account"].iloc[0]
    scored = model.score(Draft(account=account, caption="Three tags #a #b #c", sponsored=False,
                               posted_at="2030-01-01T09:00:00Z"), n_factors=100)
    words = {f["feature"] for f in scored["factors"]}
    assert "sponsored post" not in words
    assert not any(w.startswith("number of hashtags") for w in words)
    assert np.isfinite([f["contribution"] for f in scored["factors"]]).all()


def test_hashtag_stuffing_is_flagged_and_lowers_expected_likes(model):
    account = model.context_posts["account"].iloc[0]
    caption = "Golden hour walk through the old town, every corner a story"
    plain = model.score(Draft(account=account, caption=caption, posted_at="2030-01-01T18:00:00Z"))
    stuffed = model.score(Draft(account=account, caption=caption + " " + " ".join(f"#tag{i}" for i in range(25)),
                                posted_at="2030-01-01T18:00:00Z"))
    assert "too_many_hashtags" in {f["code"] for f in stuffed["flags"]}
    assert "too_many_hashtags" not in {f["code"] for f in plain["flags"]}
    assert stuffed["likes"]["expected"] < plain["likes"]["expected"]


def test_an_unknown_account_is_scored_from_priors_with_a_flag(model):
    scored = model.score(Draft(account="nobody_we_know", caption="hello", followers=5000))
    assert "unknown_account" in {f["code"] for f in scored["flags"]}
    assert scored["likes"]["expected"] > 0


def test_features_at_many_times_equal_one_transform_per_time(model):
    account = model.context_posts["account"].iloc[0]
    other = model.context_posts[model.context_posts["account"] != account].iloc[-1]
    # Start just after another account's last post, so some candidates see it inside the 24 h window.
    start = other["posted_at"].floor("h") + pd.Timedelta(hours=1)
    draft = Draft(account=account, caption=other["caption"], posted_at=start.isoformat())
    posts, vectors, _ = draft_context(model, draft, start.to_pydatetime())
    vectors.image[-1] = model.context_vectors.image[model.context_posts.index.get_loc(other.name)]
    times = [start + pd.Timedelta(hours=h) for h in (0, 5, 23, 30, 100)]
    batch = model.pipeline.transform_at_times(posts, vectors, len(posts) - 1, times)
    for k, when in enumerate(times):
        one = posts.copy()
        one.loc[len(one) - 1, "posted_at"] = when
        single = model.pipeline.transform(one, vectors, rows=[len(one) - 1])
        np.testing.assert_allclose(batch.iloc[[k]].to_numpy(), single.to_numpy(), rtol=1e-6, atol=1e-6, equal_nan=True)
    # The copied photo counts as a duplicate inside the window and not after it.
    assert batch["duplicate_image_accounts"].iloc[0] >= 1 and batch["duplicate_image_accounts"].iloc[-1] == 0


def test_best_hour_is_one_of_the_next_seven_days_hours(model):
    account = model.context_posts["account"].iloc[0]
    start = model.context_posts["posted_at"].max().to_pydatetime()
    best = model.best_hour(Draft(account=account, caption="A slow Sunday"), start=start)
    when = pd.Timestamp(best["posted_at"])
    assert pd.Timestamp(start) < when <= pd.Timestamp(start) + pd.Timedelta(days=7, hours=1)
    assert when.minute == 0 and best["expected_likes"] > 0
