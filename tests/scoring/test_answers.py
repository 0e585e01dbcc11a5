"""The scorer's typed answers (engage/scoring/answers.py) and the one ranking of drafts
(engage/scoring/compare.py), on constructed answers and a stand-in scorer: no model is trained."""

from __future__ import annotations

import json
import math

import pytest
from serving_helpers import RecordingScorer

from engage.errors import DraftError, ModelError
from engage.model.draft import Draft
from engage.scoring.answers import Answer, ScoreAnswer, rank
from engage.scoring.compare import DraftOfManyError, compare
from engage.serving.schemas import ScoreResponse


def answer(likes: float | None, saves: float | None = None, flags: tuple[str, ...] = ()) -> Answer:
    def count(value: float | None) -> dict[str, float] | None:
        return None if value is None else {"expected": value, "low": value / 2, "high": value * 2}

    return ScoreAnswer.model_validate({
        "model_version": "m/1", "embedder": "e", "likes": count(likes), "saves": count(saves),
        "authenticity_risk": None, "risk_label": "proxy", "factors": [],
        "flags": [{"code": code, "message": f"about {code}"} for code in flags]})


def test_an_answer_reads_each_count_target_by_name_and_refuses_a_name_that_is_none():
    scored = answer(120.0, saves=7.0)
    assert scored.count("likes").expected == 120.0 and scored.likes.high == 240.0
    assert scored.count("comments") is None
    with pytest.raises(KeyError, match="'authenticity_risk' is not a count target"):
        scored.count("authenticity_risk")


def test_an_answer_flattens_to_a_table_row_with_nan_where_the_model_has_no_target():
    row = answer(120.0, flags=("too_many_hashtags", "disclosure_tags", "late")).flat(max_flags=2)
    assert (row["likes_expected"], row["likes_low"], row["likes_high"]) == (120.0, 60.0, 240.0)
    assert math.isnan(row["saves_expected"]) and math.isnan(row["authenticity_risk"])
    assert row["flags"] == "too_many_hashtags,disclosure_tags"


def test_the_feature_row_rides_with_the_answer_but_never_reaches_the_json():
    scored = answer(10.0).with_features({"n_hashtags": 3.0, "image_brightness": None})
    assert scored.features == {"n_hashtags": 3.0, "image_brightness": None}
    body = json.loads(scored.model_dump_json())
    assert "features" not in body and "_features" not in body and body["likes"]["expected"] == 10.0
    assert ScoreResponse is type(scored)  # the API serves the scorer's answer as it is


def test_ranking_orders_by_the_goal_keeps_submission_order_on_ties_and_gives_the_differences():
    ranked = rank([answer(100.0, saves=5.0), answer(130.0, saves=5.0), answer(100.0, saves=9.0)], "likes")
    assert [(d.index, d.rank) for d in ranked] == [(1, 1), (0, 2), (2, 3)]
    assert [d.vs_first for d in ranked] == [30.0, 0.0, 0.0]
    assert [d.vs_best for d in ranked] == [0.0, -30.0, -30.0]
    assert [d.likes_vs_best for d in ranked] == [0.0, -30.0, -30.0]
    by_saves = rank([answer(100.0, saves=5.0), answer(130.0, saves=5.0), answer(100.0, saves=9.0)], "saves")
    assert [d.index for d in by_saves] == [2, 0, 1] and by_saves[0].vs_first == 4.0
    assert by_saves[0].likes_vs_first == 0.0 and by_saves[2].likes_vs_best == 0.0


def test_ranking_by_a_count_the_answers_lack_names_the_goals_they_have():
    with pytest.raises(ModelError, match="predicts no comments .* goals this model has: likes, saves"):
        rank([answer(1.0, saves=2.0), answer(3.0, saves=1.0)], "comments")


def test_compare_scores_every_draft_ranks_them_and_finds_the_top_drafts_hour():
    model = RecordingScorer()
    drafts = [Draft(account="anna.bakes", caption=c) for c in ("Bread #a #b #c", "Bread",
                                                               "Bread tip, tip #a")]
    result = compare(model, drafts, goal="saves", best_hour=True, time_zone="Europe/Berlin")
    assert [d.index for d in result.drafts] == [2, 0, 1]  # two tips: most saves; the others tie on saves
    assert result.drafts[0].score.saves.expected == 20.0 and result.drafts[0].vs_first == 10.0
    assert result.best_hour is not None and result.best_hour.time_zone == "Europe/Berlin"
    assert model.best_hour_drafts == [drafts[2]] and result.account == "anna.bakes"
    by_likes = compare(model, drafts)  # likes fall with each hashtag
    assert [d.index for d in by_likes.drafts] == [1, 2, 0] and by_likes.best_hour is None
    assert by_likes.drafts[2].likes_vs_best == -9.0


def test_compare_refuses_a_goal_the_model_lacks_before_scoring_anything():
    model = RecordingScorer()
    with pytest.raises(ModelError,
                       match="predicts no impressions .* goals this model has: likes, comments, saves"):
        compare(model, [Draft(account="anna.bakes", caption="a"), Draft(account="anna.bakes", caption="b")],
                goal="impressions")
    assert model.drafts == []


def test_compare_names_the_draft_that_cannot_be_scored():
    drafts = [Draft(account="anna.bakes", caption="fine"),
              Draft(account="anna.bakes", caption="bad", image=b"nope")]
    with pytest.raises(DraftOfManyError, match="draft 1") as caught:
        compare(RecordingScorer(), drafts)
    assert caught.value.index == 1 and not isinstance(caught.value.error, DraftError)  # the photo's DataError
