"""Scoring a draft with the `Scorer` (engage/scoring/scorer.py) on the session's smoke model: context, errors,
advice, batching, the vector cache and tables."""

from __future__ import annotations

import io
import threading

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engage.errors import DraftError
from engage.features.vectors import PostVectors
from engage.model.bundle import EngageModel
from engage.model.draft import Draft, HistoryPost
from engage.scoring.scorer import Scorer


@pytest.fixture(scope="module")
def model(trained) -> EngageModel:
    return EngageModel.load(trained[1])


@pytest.fixture(scope="module")
def scorer(model) -> Scorer:
    return Scorer(model)


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


def test_a_bad_history_photo_is_named_by_its_place_in_the_request_not_after_sorting(model, scorer):
    good_earlier = HistoryPost(caption="first", image=_jpeg((200, 120, 40)), posted_at="2029-12-01T10:00:00Z",
                               likes=50)
    bad_later = HistoryPost(caption="second", image=b"not a photo", posted_at="2029-12-20T10:00:00Z",
                            likes=60)
    # Request order: the bad (later) post first; sorted by time it is second.
    draft = Draft(account="new.account", caption="hello", posted_at="2030-01-01T09:00:00Z",
                  history=[bad_later, good_earlier])
    with pytest.raises(DraftError, match="not a readable image") as caught:
        scorer.score(draft)
    assert caught.value.field == "history[0].image"


def test_history_posts_after_the_draft_are_left_out_of_its_context(model, scorer):
    account = model.context_posts["account"].iloc[0]
    history = _history_of(model, account, 4)
    future = HistoryPost(caption="later", posted_at="2031-01-01T00:00:00Z", likes=10**6)
    draft = Draft(account="new.account", caption="hello", posted_at="2030-01-01T09:00:00Z",
                  history=[*history, future])
    posts, vectors, known = scorer.draft_context(draft, draft.posted_at)
    own = posts[posts["account"] == "new.account"]
    assert known and len(own) == len(history) + 1  # the history and the draft, not the later post
    assert own["likes"].max() < 10**6 and len(vectors) == len(posts)


def test_extra_hashtags_never_raise_expected_likes_for_a_new_account_described_by_its_history(model, scorer):
    # Before the raw counts were constrained, 2 of these 20 drafts gained likes from 25 more hashtags (e.g.
    # 20.20 -> 20.45 from a 3-post history) while the flags warned against them.
    caption = "Golden hour walk through the old town, every corner a story"
    stuffed = caption + " " + " ".join(f"#tag{i}" for i in range(25))
    when = "2030-01-01T18:00:00Z"
    rises = []
    for account in sorted(model.context_posts["account"].unique()):
        for n in (3, 8):
            history = _history_of(model, account, n)
            plain = scorer.score(Draft(account="new.account", caption=caption, posted_at=when,
                                       history=history))
            tagged = scorer.score(Draft(account="new.account", caption=stuffed, posted_at=when,
                                        history=history))
            assert "too_many_hashtags" in {f.code for f in tagged.flags}
            if tagged.likes.expected > plain.likes.expected:
                rises.append((account, n, plain.likes.expected, tagged.likes.expected))
    assert rises == []


def test_factors_say_the_drafts_own_value(model, scorer):
    account = model.context_posts["account"].iloc[0]
    scored = scorer.score(Draft(account=account, caption="Three tags #a #b #c", sponsored=False,
                               posted_at="2030-01-01T09:00:00Z"), n_factors=100)
    words = {f.feature for f in scored.factors}
    assert "sponsored post" not in words
    assert not any(w.startswith("number of hashtags") for w in words)
    assert np.isfinite([f.contribution for f in scored.factors]).all()


def test_hashtag_stuffing_is_flagged_and_lowers_expected_likes(model, scorer):
    account = model.context_posts["account"].iloc[0]
    caption = "Golden hour walk through the old town, every corner a story"
    plain = scorer.score(Draft(account=account, caption=caption, posted_at="2030-01-01T18:00:00Z"))
    stuffed = scorer.score(Draft(account=account,
                                 caption=caption + " " + " ".join(f"#tag{i}" for i in range(25)),
                                posted_at="2030-01-01T18:00:00Z"))
    assert "too_many_hashtags" in {f.code for f in stuffed.flags}
    assert "too_many_hashtags" not in {f.code for f in plain.flags}
    assert stuffed.likes.expected < plain.likes.expected


def test_an_unknown_account_is_scored_from_priors_with_a_flag(model, scorer):
    scored = scorer.score(Draft(account="nobody_we_know", caption="hello", followers=5000))
    assert "unknown_account" in {f.code for f in scored.flags}
    assert scored.likes.expected > 0


def test_a_draft_dated_before_the_accounts_first_stored_post_is_scored_at_the_accounts_level(model, scorer):
    ctx = model.context_posts
    account = ctx["account"].iloc[0]
    first = ctx.loc[ctx["account"] == account, "posted_at"].min()
    early = scorer.score(Draft(account=account, caption="Morning light #sea",
                               posted_at=(first - pd.Timedelta(days=3)).isoformat()))
    codes = [f.code for f in early.flags]
    assert "unknown_account" not in codes and "before_known_history" in codes
    own = ctx.loc[ctx["account"] == account, "likes"].astype(float)
    assert own.min() <= early.likes.expected <= own.max()  # the account's level, not the population's
    stranger = scorer.score(Draft(account="nobody_we_know", caption="Morning light #sea",
                                 posted_at=(first - pd.Timedelta(days=3)).isoformat()))
    assert "before_known_history" not in [f.code for f in stranger.flags]


def test_a_small_unknown_account_is_scored_from_accounts_of_its_size_and_told_it_is_outside_the_range(
    model, scorer):
    followers = model.context_posts["followers"].dropna().astype(float)
    small = int(followers.min() / 20)
    scored = scorer.score(Draft(account="tiny_new_shop", caption="hello #coffee", followers=small,
                               posted_at="2030-01-01T09:00:00Z"))
    flags = {f.code: f.message for f in scored.flags}
    assert f"{small:,} followers is fewer than any account the model was trained on" in flags[
        "followers_outside_training"]
    assert "training accounts closest in size" in flags["unknown_account"]
    # Per follower, like its nearest accounts: nowhere near
    # the extrapolated prior's multiples of its followers.
    assert scored.likes.expected < small
    typical = scorer.score(Draft(account="mid_new_shop", caption="hello #coffee",
                                 followers=int(followers.median()),
                                posted_at="2030-01-01T09:00:00Z"))
    assert "followers_outside_training" not in [f.code for f in typical.flags]
    width = np.log1p(scored.likes.high) - np.log1p(scored.likes.low)
    assert width > np.log1p(typical.likes.high) - np.log1p(typical.likes.low)  # widened


def test_a_known_accounts_expected_counts_stay_inside_its_own_posts_range(model, scorer):
    ctx = model.context_posts
    for account, own in ctx.groupby("account"):
        when = (own["posted_at"].max() + pd.Timedelta(days=1)).isoformat()
        scored = scorer.score(Draft(account=account, caption="A new post " + "#tag " * 30, posted_at=when))
        for target in ("likes", "comments"):
            values = own[target].dropna().astype(float)
            assert values.min() - 0.01 <= scored.count(target).expected <= values.max() + 0.01, (
                account, target)


def _with_every_other_account(model: EngageModel, draft: Draft, posts: pd.DataFrame, vectors: PostVectors):
    """The draft's context as scoring built it before the context was prepared: every stored post of the other
    accounts in the same table, so that duplicates are counted by hashing all of them with the draft."""
    others = np.flatnonzero((model.context_posts["account"] != draft.account).to_numpy())
    return (pd.concat([model.context_posts.iloc[others], posts], ignore_index=True),
            PostVectors.concat([model.context_vectors.take(others), vectors]))


def _photo_of(smoke_settings, model: EngageModel, row: pd.Series) -> bytes:
    """The photo file of a stored post (the bundle keeps its vector only), from the smoke demo's folder."""
    from engage.training import load_training_posts

    posts = load_training_posts(smoke_settings)
    match = posts[(posts["post_id"] == row["post_id"]) & (posts["account"] == row["account"])]
    return open(match["image"].iloc[0], "rb").read()


def test_prepared_context_gives_the_features_of_the_draft_against_every_stored_post(
    model, smoke_settings, scorer):
    ctx = model.context_posts
    has_vector = ~np.isnan(model.context_vectors.image).any(axis=1)
    copied = ctx[has_vector].iloc[-1]  # another account's latest post with a photo: its photo is copied
    account = ctx.loc[ctx["account"] != copied["account"], "account"].iloc[0]
    soon = (copied["posted_at"] + pd.Timedelta(hours=2)).isoformat()
    photo = _photo_of(smoke_settings, model, copied)
    history = _history_of(model, account, 5)
    history[0] = history[0].model_copy(update={"image": photo})
    drafts = [
        Draft(account=account, caption="A photo someone else posted an hour ago", image=photo,
              posted_at=soon),
        Draft(account="new.account", caption=copied["caption"], history=history, followers=300,
              posted_at=soon),
        Draft(account=account, caption="No photo, plain words", posted_at="2030-01-01T09:00:00Z"),
    ]
    duplicates = []
    for draft in drafts:
        features, _ = scorer.features_for(draft)
        posts, vectors, _ = scorer.draft_context(draft, draft.posted_at)
        full_posts, full_vectors = _with_every_other_account(model, draft, posts, vectors)
        expected = model.pipeline.transform(full_posts, full_vectors, rows=[len(full_posts) - 1])
        np.testing.assert_array_equal(features.to_numpy(), expected.to_numpy())
        assert list(features.columns) == list(expected.columns)
        duplicates.append(features[["duplicate_image_accounts",
                                    "duplicate_caption_accounts"]].iloc[0].tolist())
    assert duplicates[0][0] >= 1 and duplicates[1][1] >= 1  # the cases do exercise the duplicate index


def test_features_at_many_times_equal_one_transform_per_time(model, scorer):
    account = model.context_posts["account"].iloc[0]
    other = model.context_posts[model.context_posts["account"] != account].iloc[-1]
    # Start just after another account's last post, so some candidates see it inside the 24 h window.
    start = other["posted_at"].floor("h") + pd.Timedelta(hours=1)
    draft = Draft(account=account, caption=other["caption"], posted_at=start.isoformat())
    posts, vectors, _ = scorer.draft_context(draft, start.to_pydatetime())
    posts, vectors = _with_every_other_account(model, draft, posts, vectors)
    vectors.image[-1] = model.context_vectors.image[model.context_posts.index.get_loc(other.name)]
    times = [start + pd.Timedelta(hours=h) for h in (0, 5, 23, 30, 100)]
    batch = model.pipeline.transform_at_times(posts, vectors, len(posts) - 1, times)
    for k, when in enumerate(times):
        one = posts.copy()
        one.loc[len(one) - 1, "posted_at"] = when
        single = model.pipeline.transform(one, vectors, rows=[len(one) - 1])
        np.testing.assert_allclose(batch.iloc[[k]].to_numpy(), single.to_numpy(), rtol=1e-6, atol=1e-6,
                                   equal_nan=True)
    # The copied photo counts as a duplicate inside the window and not after it.
    assert batch["duplicate_image_accounts"].iloc[0] >= 1 and batch["duplicate_image_accounts"].iloc[-1] == 0
    # ... and the prepared duplicate index gives the best-hour search the same features.
    own = posts[posts["account"] == account].reset_index(drop=True)
    own_vectors = vectors.take(np.flatnonzero((posts["account"] == account).to_numpy()))
    counted = scorer.prepared.duplicates.draft(account, times, own_vectors.image[-1], own_vectors.caption[-1],
                                             draft.caption)
    fast = model.pipeline.transform_at_times(own, own_vectors, len(own) - 1, times, duplicates=counted)
    np.testing.assert_array_equal(fast.to_numpy(), batch.to_numpy())


def test_best_hour_is_one_of_the_next_seven_days_hours(model, scorer):
    account = model.context_posts["account"].iloc[0]
    start = model.context_posts["posted_at"].max().to_pydatetime()
    best = scorer.best_hour(Draft(account=account, caption="A slow Sunday"), start=start)
    when = pd.Timestamp(best.posted_at)
    assert pd.Timestamp(start) < when <= pd.Timestamp(start) + pd.Timedelta(days=7, hours=1)
    assert when.minute == 0 and best.expected_likes > 0


def test_concurrent_drafts_scored_in_shared_batches_get_the_unbatched_answers(model, scorer):
    from concurrent.futures import ThreadPoolExecutor

    account = model.context_posts["account"].iloc[0]
    drafts = [Draft(account=account, caption=f"Draft number {i} #walk",
                    image=_jpeg((40 * i, 90, 200 - 30 * i)),
                    posted_at="2030-01-01T09:00:00Z") for i in range(4)]
    alone = [scorer.score(d) for d in drafts]
    batched = Scorer(model, batch_size=8, batch_wait_ms=500, vector_cache_items=0, expected_callers=lambda: 4)
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(batched.score, drafts))
    for a, b in zip(alone, together, strict=True):
        for target in ("likes", "comments"):
            np.testing.assert_allclose([getattr(b.count(target), k) for k in ("expected", "low", "high")],
                [getattr(a.count(target), k) for k in ("expected", "low", "high")], rtol=1e-4)
        np.testing.assert_allclose(b.authenticity_risk, a.authenticity_risk, rtol=1e-4)
    stats = batched.serving_settings()["batching"]
    assert stats["max_batch_size"] == 8 and stats["batches"] < 4  # forward passes were shared


def test_a_history_sent_again_is_not_embedded_again(model):
    cached = Scorer(model, vector_cache_items=100)
    account = model.context_posts["account"].iloc[-1]
    history = [h.model_copy(update={"image": _jpeg((20 * i, 100, 50))}) for i,
               h in enumerate(_history_of(model, account, 5))]
    first = cached.score(Draft(account="new.account", caption="one", history=history,
                               posted_at="2030-01-01T09:00:00Z"))
    misses = cached.serving_settings()["vector_cache"]["misses"]
    second = cached.score(Draft(account="new.account", caption="two", history=history,
                                posted_at="2030-01-01T09:00:00Z"))
    cache = cached.serving_settings()["vector_cache"]
    assert cache["misses"] == misses + 1  # only the new caption
    assert cache["hits"] >= 10  # five photos and five captions
    assert first.likes.expected > 0 and second.likes.expected > 0


def test_a_model_pickles_without_serving_state_and_a_scorer_of_the_copy_scores_the_same(model):
    # Ray ships the model to its actors by pickling it: the serving state (vector cache, batcher: locks,
    # threads) belongs to a Scorer, never to the model, and a scorer built there gives the same answers.
    import pickle

    serving = Scorer(model, batch_size=4, batch_wait_ms=1.0, vector_cache_items=16)
    account = str(model.context_posts["account"].iloc[0])
    draft = Draft(account=account, caption="Fresh bread #bake", posted_at="2030-01-01T18:00:00Z")
    before = serving.score(draft)
    copy = pickle.loads(pickle.dumps(model))
    assert not any(isinstance(v, (Scorer, threading.Lock().__class__)) for v in vars(copy).values())
    assert Scorer(copy).score(draft).likes == before.likes


def test_a_draft_that_fails_in_a_shared_batch_fails_alone(model, monkeypatch):
    scorer = Scorer(model)
    account = str(model.context_posts["account"].iloc[0])
    inputs = [scorer.prepare(Draft(account=account, caption=caption), pd.Timestamp("2030-01-01T09:00:00Z"))
              for caption in ("Fine one #walk", "broken", "Fine two #walk")]
    real = scorer.score_batch

    def score_batch(batch):
        if any(i.draft.caption == "broken" for i in batch):
            raise ValueError("this draft cannot be scored")
        return real(batch)

    monkeypatch.setattr(scorer, "score_batch", score_batch)
    answers = scorer.score_isolated(inputs)
    assert isinstance(answers[1], ValueError) and "cannot be scored" in str(answers[1])
    assert answers[0].likes == real(inputs[:1])[0].likes
    assert answers[2].likes.expected > 0


def test_drafts_scored_in_chunks_get_each_drafts_own_answer_and_a_bad_one_its_own_error(model, scorer):
    account = str(model.context_posts["account"].iloc[0])
    drafts = [Draft(account=account, caption="Morning run #fit", posted_at="2030-01-01T09:00:00Z"),
        Draft(account=account, caption="Morning run #fit #ad #sponsored", posted_at="2030-01-01T09:00:00Z"),
              Draft(account="someone.new", caption="Bad photo", image=b"not a photo",
                    posted_at="2030-01-01T09:00:00Z"),
              Draft(account="someone.new", caption="First post", posted_at="2030-01-01T09:00:00Z")]
    # Chunks of two: drafts of one account together, then the bad draft with the new account's.
    scored = scorer.score_many(drafts, chunk=2)
    assert isinstance(scored[2], DraftError) and scored[2].field == "image"
    for i in (0, 1, 3):
        alone, together = scorer.score(drafts[i]).flat(), scored[i].flat()
        for column in ("likes_expected", "likes_low", "comments_high", "authenticity_risk"):
            assert together[column] == pytest.approx(alone[column], rel=1e-6), (i, column)
        assert together["flags"] == alone["flags"]
    assert scored[0].likes.expected != scored[1].likes.expected  # the #ad draft is its own draft


def test_the_pyfunc_frame_gives_each_rows_own_answer(model, scorer):
    from engage.scoring.pyfunc import predict_frame
    account = str(model.context_posts["account"].iloc[0])
    frame = pd.DataFrame({"account": [account, account, "someone.new"],
                          "caption": ["Morning run #fit", "Morning run #fit #ad #sponsored", "First post"],
                          "posted_at": ["2030-01-01T09:00:00Z"] * 3})
    scored = predict_frame(scorer, frame)
    for i, record in enumerate(frame.to_dict(orient="records")):
        alone = scorer.score(Draft(**record)).flat()
        for column in ("likes_expected", "likes_low", "comments_high", "authenticity_risk"):
            assert scored[column][i] == pytest.approx(alone[column], rel=1e-6), (i, column)
        assert scored["flags"][i] == alone["flags"]


def test_best_hour_is_a_whole_hour_of_the_accounts_time_zone_and_names_it(model, scorer):
    account = model.context_posts["account"].iloc[0]
    start = model.context_posts["posted_at"].max().to_pydatetime()
    draft = Draft(account=account, caption="A slow Sunday")
    local = scorer.best_hour(draft, start=start, time_zone="Asia/Kolkata")
    when = pd.Timestamp(local.posted_at)
    assert local.time_zone == "Asia/Kolkata"
    assert when.utcoffset() == pd.Timedelta(hours=5, minutes=30) and when.minute == 0  # a whole local hour
    assert when.tz_convert("UTC").minute == 30
    assert scorer.best_hour(draft, start=start).time_zone == "UTC"


def test_the_own_range_counts_of_several_tables_are_those_of_the_tables_concatenated():
    # The draft's earlier rows are read column by column from its stored posts and the history sent with it;
    # the values are those the concatenated table gave (NaN for a missing or non-numeric count).
    from engage.scoring.scorer import _counts

    stored = pd.DataFrame({"likes": pd.array([3, None, 7], dtype="Int64")})
    sent = pd.DataFrame({"likes": pd.array([None, 12], dtype="Int64")})
    text = pd.DataFrame({"likes": pd.Series(["5", "x"], dtype=object)})
    tables = [stored, sent.iloc[:0], sent, text]
    expected = pd.to_numeric(pd.concat(tables, ignore_index=True)["likes"],
                             errors="coerce").to_numpy(dtype=float)
    got = _counts(tables, "likes")
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, [3, np.nan, 7, np.nan, 12, 5, np.nan])
    assert _counts([], "likes").shape == (0,)
