"""Property-based fuzzing of request parsing (hypothesis), in process: any JSON or form body becomes a Draft
or a 400/422 `RequestError` whose answer is small, names only schema fields and never repeats what was sent.

The same properties against a running `serve.py` are in tests/reliability/test_hostile_input.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engage.model.draft import Draft
from engage.serving.parsing import (
    MAX_PROBLEMS,
    RequestError,
    compare_request_from_json,
    score_request_from_form,
    score_request_from_json,
)

MARKER = "fuzz-marker-Zq8"
FIELDS = ["account", "caption", "image", "posted_at", "followers", "sponsored", "history", "likes",
          "comments",
          "drafts", "best_hour"]
#: An answer must stay this small whatever was sent.
MAX_ANSWER_BYTES = 4096

huge_numbers = st.integers(min_value=12, max_value=20_000).map(lambda n: "9" * n)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(["2024-05-01T10:00:00Z", "9999-12-31T00:00:00Z", "", " ", MARKER]),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12), st.just(MARKER),
                 st.just("<b>" + MARKER + "</b>"))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
    st.dictionaries(keys, inner, max_size=6)), max_leaves=30)
bodies = st.dictionaries(keys, values, max_size=10)


def with_huge_numbers(body: dict[str, Any], number: str) -> bytes:
    """The JSON of `body` with every integer 7 replaced by a literal
    of thousands of digits (json.dumps cannot write one)."""
    text = json.dumps(body)
    return text.replace(": 7,", f": {number},").replace(": 7}", f": {number}}}").encode()


def check_answer(error: RequestError) -> None:
    assert error.status in (400, 422), error
    answer = json.dumps(error.body(), ensure_ascii=False).encode("utf-8")  # as starlette renders it
    assert len(answer) < MAX_ANSWER_BYTES
    assert MARKER not in answer.decode()
    listed = error.body()["error"]
    assert len(listed if isinstance(listed, list) else [listed]) <= MAX_PROBLEMS + 1


def parse(parser: Any, body: bytes) -> None:
    try:
        result = parser(body)
    except RequestError as e:
        check_answer(e)
    else:
        drafts = result[1] if isinstance(result, tuple) else [result]
        assert all(isinstance(d, Draft) for d in drafts)


FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(body=bodies)
def test_any_json_object_is_a_draft_or_a_small_4xx_that_repeats_nothing(body: dict[str, Any]) -> None:
    parse(score_request_from_json, json.dumps(body).encode())


@settings(FUZZ, max_examples=30)
@given(body=bodies, drafts=st.lists(st.dictionaries(keys, scalars, max_size=6), max_size=12))
def test_any_comparison_is_drafts_or_a_small_4xx(body: dict[str, Any], drafts: list[dict[str, Any]]) -> None:
    parse(compare_request_from_json, json.dumps({**body, "account": MARKER[:5], "drafts": drafts}).encode())


@FUZZ
@given(body=st.fixed_dictionaries({"account": st.just("a"), "followers": st.just(7)}, optional={
    "history": st.lists(st.fixed_dictionaries({"posted_at": st.just("2024-01-01T00:00:00Z"),
                                               "likes": st.just(7)}),
                        max_size=3)}), number=huge_numbers)
def test_numbers_of_any_length_are_a_422_naming_the_field(body: dict[str, Any], number: str) -> None:
    with pytest.raises(RequestError) as caught:
        score_request_from_json(with_huge_numbers(body, number))
    check_answer(caught.value)
    if len(number) > 11:
        assert caught.value.status == 422
        assert "followers" in [field for field, _ in caught.value.problems]


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),
                     st.integers(1, 100_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)))
def test_any_bytes_are_parsed_or_refused_with_400_or_422(raw: bytes) -> None:
    parse(score_request_from_json, raw)


@FUZZ
@given(fields=st.dictionaries(keys,
                              st.lists(st.one_of(st.text(max_size=40), huge_numbers), min_size=1, max_size=2),
                              max_size=8))
def test_any_form_is_a_draft_or_a_small_4xx_that_repeats_nothing(fields: dict[str, list[str]]) -> None:
    try:
        draft = score_request_from_form(fields, read_file=lambda upload: b"")
    except RequestError as e:
        check_answer(e)
    else:
        assert isinstance(draft, Draft)


def test_unknown_fields_are_counted_without_their_names_and_problems_are_capped() -> None:
    body = {"account": "a", MARKER: 1, "<script>": 2, "k" * 100_000: 3,
            "history": [{"posted_at": "nope", "likes": -1, MARKER: 0}] * 40}
    with pytest.raises(RequestError) as caught:
        score_request_from_json(json.dumps(body).encode())
    error = caught.value
    check_answer(error)
    assert error.status == 422
    messages = dict(error.problems[:MAX_PROBLEMS])
    assert messages["body"].startswith("has 3 unknown fields (names not repeated)")
    assert messages["history[0]"].startswith("has 1 unknown field")
    assert len(error.problems) == MAX_PROBLEMS + 1
    assert error.problems[-1] == (None, f"and {40 * 3 + 1 - MAX_PROBLEMS:,} more problems, not listed")


@pytest.mark.parametrize(("body", "status", "message"), [
    (b'{"account": "a", "caption": ', 400, "is not valid JSON"),
    (b'{"account": "\xff"}', 400, "is not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    (b'["a"]', 422, "must be a JSON object"),
    (b'{"account": "   "}', 422, "only white space"),
])
def test_undecodable_bodies_are_400_and_invalid_well_formed_ones_422(body: bytes, status: int,
                                                                     message: str) -> None:
    with pytest.raises(RequestError, match=message) as caught:
        score_request_from_json(body)
    assert caught.value.status == status
