"""Request bodies -> Drafts (engage/serving/parsing.py), without a server: field names, messages, no echo."""

from __future__ import annotations

import base64
import json
import re

import pytest

from engage.serving.parsing import (
    RequestError,
    compare_request_from_json,
    decode_image,
    field_name,
    parse_json_object,
    score_request_from_json,
)


@pytest.mark.parametrize(("loc", "prefix", "name"), [
    (("history", 3, "likes"), "", "history[3].likes"),
    (("image",), "drafts[1].", "drafts[1].image"),
    ((), "", "body"),
])
def test_a_pydantic_location_is_written_as_a_client_writes_it(loc, prefix, name):
    assert field_name(loc, prefix) == name


@pytest.mark.parametrize(("body", "message", "status"), [
    (b"", "is empty", 422),
    (b"[1, 2]", "must be a JSON object with the draft's fields, not a JSON list", 422),
    (b"{oops", "is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
     400),
    (b'{"caption": "\xff"}', "is not UTF-8 text", 400),
])
def test_a_body_that_is_not_a_json_object_names_the_body_400_if_undecodable_else_422(body, message, status):
    with pytest.raises(RequestError, match=r"^body: " + re.escape(message)) as caught:
        parse_json_object(body)
    assert caught.value.status == status


def test_a_data_url_and_plain_base64_decode_to_the_same_bytes():
    raw = b"\xff\xd8 a jpeg"
    text = base64.b64encode(raw).decode()
    assert decode_image(text, "image") == raw == decode_image(f"data:image/jpeg;base64,{text}", "image")


def test_bad_base64_is_a_400_naming_the_field_and_never_quoting_the_value():
    with pytest.raises(RequestError,
                       match=r"^drafts\[0\]\.history\[2\]\.image: is not valid base64") as caught:
        decode_image("%%secret-not-base64%%", "drafts[0].history[2].image")
    assert caught.value.status == 400 and "secret" not in json.dumps(caught.value.body())


def test_a_history_photo_that_is_not_base64_is_named_by_its_place_in_the_request():
    body = {"account": "anna", "history": [
        {"posted_at": "2024-01-01T00:00:00Z", "likes": 3},
        {"posted_at": "2023-01-01T00:00:00Z", "likes": 4, "image": "%%"},
    ]}
    with pytest.raises(RequestError, match=r"^history\[1\]\.image: is not valid base64"):
        score_request_from_json(json.dumps(body).encode())


def test_compare_names_each_drafts_field_with_its_position():
    body = {"account": "anna", "drafts": [{"caption": "a"}, {"caption": "b", "image": "%%"}]}
    with pytest.raises(RequestError, match=r"^drafts\[1\]\.image: is not valid base64") as caught:
        compare_request_from_json(json.dumps(body).encode())
    assert caught.value.status == 400


def test_a_valid_score_body_becomes_the_models_draft():
    draft = score_request_from_json(json.dumps({"account": "anna", "caption": "hi #x",
                                                "followers": 1200}).encode())
    assert (draft.account, draft.caption, draft.followers, draft.image) == ("anna", "hi #x", 1200, None)


def test_admission_refuses_impossible_limits_with_the_setting_named():
    from engage.serving.limits import Admission

    with pytest.raises(ValueError, match="max_concurrent must be >= 1, got 0"):
        Admission(max_concurrent=0)
    with pytest.raises(ValueError, match="max_queue must be >= 0, got -1"):
        Admission(max_queue=-1)


def test_history_posts_carry_their_insight_counts_to_the_draft():
    body = {"account": "anna",
            "history": [{"posted_at": "2024-01-01T00:00:00Z", "likes": 3, "saves": 7, "reach": 90}]}
    post = score_request_from_json(json.dumps(body).encode()).history[0]
    assert (post.likes, post.saves, post.reach, post.impressions) == (3, 7, 90, None)
    with pytest.raises(RequestError, match=r"history\[0\]\.saves"):
        score_request_from_json(json.dumps({"account": "a", "history": [
            {"posted_at": "2024-01-01T00:00:00Z", "likes": 3, "saves": -1}]}).encode())


@pytest.mark.parametrize(("fields", "field", "expected"), [
    ({"posted_at": "14/05/2024"}, "posted_at", r"send ISO 8601, e\.g\. 2024-05-12T09:00:00Z"),
    ({"posted_at": "2001-01-01T00:00:00Z"}, "posted_at",
     r"between 2010-01-01 and 2200-01-01, in ISO 8601 \(e\.g\. 2024"),
    ({"followers": "5,400"}, "followers", r"send a whole number without separators, e\.g\. 5400"),
    ({"followers": 12.5}, "followers", r"send a whole number, e\.g\. 5400"),
    ({"followers": -3}, "followers", r"counts are whole numbers from 0 to 10,000,000,000"),
    ({"sponsored": "maybe"}, "sponsored", r"send true or false"),
    ({"history": [{"posted_at": "yesterday", "likes": 3}]}, r"history\[0\]\.posted_at", r"send ISO 8601"),
])
def test_a_bad_date_count_or_flag_is_answered_with_the_form_to_send(fields, field, expected):
    body = {"account": "anna", "caption": "x", **fields}
    with pytest.raises(RequestError, match=rf"^{field}: .*{expected}") as caught:
        score_request_from_json(json.dumps(body).encode())
    assert caught.value.status == 422


def test_the_413_names_the_limit_in_mb_and_a_photo_that_fits():
    from engage.serving.limits import BodyTooLarge

    detail = BodyTooLarge(10 * 1024 * 1024).detail
    assert "over the limit of 10 MB (10,485,760 bytes)" in detail
    assert "send a photo under 7.5 MB" in detail and "1080 px" in detail and "JPEG" in detail
