"""Hostile and odd input against `python serve.py` on the real smoke model: each request gets the status it
should (never a 5xx, never a hang), the error names the field, the next valid draft is scored with 200,
and no response or log line (the server runs at debug level) repeats a marker sent in captions and photos.

What tests/serving already proves is not repeated here: the JSON (base64) variants of truncated photos and
decompression bombs, a body that only *declares* 20 MB, captions just over 2,200 characters, 501 history
posts and a 1999 `posted_at` (test_server.py, test_http.py). This module adds the upload variants, bodies
really sent at 20 MB, extreme sizes and nesting, numbers JSON cannot hold, and captions in other scripts.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from serving_helpers import ServeProcess, flat_png, peak_memory_mb, photo, png_bomb, reset_peak_memory

pytestmark = pytest.mark.slow  # needs the session's trained smoke model

#: A caption (and photo content) that must never come back in a response or appear in the server's log.
MARKER = f"hostile-marker-{uuid.uuid4().hex}"
WHEN = "2025-03-02T18:00:00Z"  # just after the demo period, so the model knows each account's history
PHOTO = photo(320)
PHOTO_B64 = base64.b64encode(PHOTO).decode()
STRIP = flat_png(65_000, 1, mode="L")  # 143 bytes; resized naively, such a strip cost 14.5 GB and 27 s
STRIP_B64 = base64.b64encode(STRIP).decode()
FLAT_40MP_B64 = base64.b64encode(flat_png(6300, 6300)).decode()  # 128 KB that decode to 119 MB
TWENTY_MB = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def served(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    with ServeProcess(bundle, tmp_path_factory.mktemp("hostile") / "serve.log", "--log-level",
                      "debug") as server:
        yield server


@pytest.fixture(scope="module")
def account(served: ServeProcess) -> str:
    return httpx.get(f"{served.url}/v1/accounts").json()["accounts"][0]


def score(server: ServeProcess, **request: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/score", timeout=120, **request)


def raw_json(body: str | bytes) -> dict[str, Any]:
    """Request arguments for a body that json.dumps could not write (NaN, 1e999, deep nesting)."""
    return {"content": body.encode() if isinstance(body, str) else body,
            "headers": {"Content-Type": "application/json"}}


def error_fields(response: httpx.Response) -> list[str | None]:
    error = response.json()["error"]
    return [e["field"] for e in (error if isinstance(error, list) else [error])]


def assert_unharmed(server: ServeProcess, account: str, response: httpx.Response) -> None:
    """No marker in the answer or the log, and the next valid draft is scored."""
    for secret in (MARKER, base64.b64encode(MARKER.encode()).decode()[:40]):
        assert secret not in response.text
        assert secret not in server.log()
    following = score(server, json={"account": account, "caption": "A valid draft after the odd one",
                                    "image": PHOTO_B64,
                                    "posted_at": WHEN})
    assert following.status_code == 200, following.text


def draft(account: str, **fields: Any) -> dict[str, Any]:
    return {"account": account, "caption": MARKER, "image": PHOTO_B64, "posted_at": WHEN, **fields}


def form(account: str) -> dict[str, str]:
    return {"account": account, "caption": MARKER, "posted_at": WHEN}


def history(n: int) -> list[dict[str, Any]]:
    return [{"caption": MARKER, "posted_at": "2024-12-01T10:00:00Z", "likes": 10 + i % 7} for i in range(n)]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Each case: request arguments built from the account -> (status, field the error names).
REFUSED = {
    "truncated JPEG uploaded": (
        lambda a: {"data": form(a),
                   "files": {"image": ("draft.jpg", PHOTO[: len(PHOTO) // 2], "image/jpeg")}},
        400, "image"),
    "PNG decompression bomb uploaded": (
        lambda a: {"data": form(a), "files": {"image": ("draft.png", png_bomb(), "image/png")}}, 400,
        "image"),
    "text file named .jpg uploaded": (
        lambda a: {"data": form(a),
                   "files": {"image": ("draft.jpg", f"notes: {MARKER}\n".encode() * 50, "image/jpeg")}},
        400, "image"),
    "20 MB JSON body sent in full": (
        lambda a: {"json": draft(a, image=base64.b64encode(b"\xff" * (TWENTY_MB * 3 // 4)).decode())}, 413,
        "body"),
    "20 MB photo uploaded": (
        lambda a: {"data": form(a),
                   "files": {"image": ("big.jpg", b"\xff\xd8" + b"\x00" * TWENTY_MB, "image/jpeg")}},
        413, "body"),
    "100,000-character caption": (lambda a: {"json": draft(a, caption=MARKER + "x" * 100_000)}, 422,
                                  "caption"),
    "10,000 hashtags": (
        lambda a: {"json": draft(a, caption=MARKER + " " + " ".join(f"#tag{i}" for i in range(10_000)))}, 422,
        "caption"),
    "followers NaN": (
        lambda a: raw_json(json.dumps(draft(a)).replace('"account"', '"followers": NaN, "account"')), 422,
        "followers"),
    "followers Infinity (1e999)": (
        lambda a: raw_json(json.dumps(draft(a)).replace('"account"', '"followers": 1e999, "account"')), 422,
        "followers"),
    "followers negative": (lambda a: {"json": draft(a, followers=-1)}, 422, "followers"),
    "followers huge (10**30)": (lambda a: {"json": draft(a, followers=10**30)}, 422, "followers"),
    "followers a fraction": (lambda a: {"json": draft(a, followers=1234.5)}, 422, "followers"),
    "posted_at in year 9999": (lambda a: {"json": draft(a, posted_at="9999-12-31T23:59:59Z")}, 422,
                               "posted_at"),
    "JSON nested 10,000 levels": (lambda a: raw_json(nested(10_000)), 400, "body"),
    "history nested 10,000 levels": (
        lambda a: raw_json(
            b'{"account": "' + a.encode() + b'", "caption": "' + MARKER.encode() + b'", "history": '
                           + nested(10_000) + b"}"), 400, "body"),
    "history of 10,000 posts": (lambda a: {"json": draft(a, history=history(10_000))}, 422, "history"),
    "multipart history nested 10,000 levels": (
        lambda a: {"data": {**form(a), "history": nested(10_000).decode()}}, 422, "history"),
    "caption with a lone UTF-16 surrogate": (
        lambda a: raw_json(json.dumps(draft(a, caption=MARKER + "\ud800"))), 422, "caption"),
    "JSON body that is not UTF-8": (
        lambda a: raw_json(json.dumps(draft(a)).encode().replace(b'"account"',
                                                                 b'"caption2": "\xff\xfe", "account"')),
        400, "body"),
    "thin 65000 x 1 PNG as the draft photo": (lambda a: {"json": draft(a, image=STRIP_B64)}, 400, "image"),
    "thin 65000 x 1 PNG as a history photo": (
        lambda a: {"json": draft(a, history=[{**history(1)[0], "image": STRIP_B64}])}, 400,
        "history[0].image"),
    "thin 65000 x 1 PNG uploaded": (
        lambda a: {"data": form(a), "files": {"image": ("strip.png", STRIP, "image/png")}}, 400, "image"),
    "number of 5,000 digits": (
        lambda a: raw_json(json.dumps(draft(a)).replace('"account"',
                                                        f'"followers": {"7" * 5000}, "account"')),
        422, "followers"),
    "number of 5,000 digits in a history post": (
        lambda a: raw_json(
            json.dumps(draft(a, history=history(1))).replace('"likes": 10', f'"likes": {"7" * 5000}')),
        422, "history[0].likes"),
    "number of 5,000 digits in multipart history": (
        lambda a: {"data": {
            **form(a), "history": json.dumps(history(1)).replace('"likes": 10', f'"likes": {"7" * 5000}')}},
        422, "history[0].likes"),
    "unknown key that is the marker, in markup": (
        lambda a: {"json": {**draft(a), f"<script>{MARKER}</script>": 1}}, 422, "body"),
    "unknown key of 5 MB": (lambda a: {"json": {**draft(a), MARKER + "k" * (5 * 1024 * 1024): 1}}, 422,
                            "body"),
    "unknown key in a history post": (
        lambda a: {"json": draft(a, history=[{**history(1)[0], MARKER: 1}])}, 422, "history[0]"),
    "unknown multipart field named with the marker": (lambda a: {"data": {**form(a), MARKER: "x"}}, 422,
                                                      "body"),
    "account of white space": (lambda a: {"json": {**draft(a), "account": " \t\n "}}, 422, "account"),
    "Content-Encoding gzip": (
        lambda a: {"content": gzip.compress(json.dumps(draft(a)).encode()),
                   "headers": {"Content-Type": "application/json", "Content-Encoding": "gzip"}}, 415,
                   "Content-Encoding"),
    "Content-Type text/plain": (
        lambda a: {"content": json.dumps(draft(a)).encode(), "headers": {"Content-Type": "text/plain"}},
        415, "Content-Type"),
    "JSON a bare number of 100,000 digits": (lambda a: raw_json("9" * 100_000), 422, "body"),
    "JSON with a duplicated key holding the marker": (
        lambda a: raw_json(json.dumps(draft(a))[:-1] + f', "caption": {{"{MARKER}": 1}}}}'), 422, "caption"),
    "ten flat 40-megapixel history photos (1.3 MB, over the request's pixel budget)": (
        lambda a: {"json": draft(a, history=[{**history(1)[0], "image": FLAT_40MP_B64}] * 10)}, 400,
        "history[2].image"),
    "urlencoded form of 9 MB of separators": (
        lambda a: {"content": b"&" * 9_000_000,
                   "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        400, "body"),
    "multipart without a boundary": (
        lambda a: {"content": f"account={a}&caption={MARKER}".encode(),
                   "headers": {"Content-Type": "multipart/form-data"}},
        400, "body"),
    "multipart that is not multipart": (
        lambda a: {"content": MARKER.encode() * 100,
                   "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}},
        400, "body"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_hostile_draft_is_refused_with_a_4xx_naming_the_field_and_the_server_keeps_serving(
    served: ServeProcess, account: str, case: str
) -> None:
    build, status, field = REFUSED[case]
    request = build(account)
    started = time.perf_counter()
    response = score(served, **request)
    seconds = time.perf_counter() - started
    assert response.status_code == status, response.text[:500]
    assert seconds < 10, f"{seconds:.1f} s"  # refused cases cost little, whatever their size
    assert field in error_fields(response)
    assert_unharmed(served, account, response)


def test_history_over_the_cap_says_what_the_cap_is(served: ServeProcess, account: str) -> None:
    response = score(served, json=draft(account, history=history(10_000)))
    assert response.status_code == 422
    assert "at most 500" in response.json()["error"]["message"]


@pytest.mark.parametrize(("case", "caption"), [
    ("emoji only", "🍞🥐🥖✨🔥💯🙌🏽👨‍👩‍👧" * 20),
    ("right to left (Arabic)", "خبز العجين المخمر في صباح الأحد، رائحته لا تقاوم #خبز #مخبوزات"),
    ("right to left (Hebrew) with a left-to-right hashtag", "לחם מחמצת של יום ראשון בבוקר #sourdough"),
    ("mixed bidi control characters", "\u202eevil\u202c caption \u2066isolated\u2069 #bread"),
    ("NUL and other control characters", "tab\there, bell\x07, nul\x00 and a form feed\x0c"),
])
def test_captions_in_other_scripts_are_valid_drafts(served: ServeProcess, account: str, case: str,
                                                    caption: str) -> None:
    response = score(served,
                     json={"account": account, "caption": caption, "image": PHOTO_B64, "posted_at": WHEN})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["likes"]["low"] <= body["likes"]["expected"] <= body["likes"]["high"]
    assert 0 <= body["authenticity_risk"] <= 1


def test_caption_of_2200_characters_of_hashtags_is_scored_and_flagged(served: ServeProcess,
                                                                      account: str) -> None:
    tags = ""
    i = 0
    while len(tags) + len(f" #t{i}") <= 2200:
        tags += f" #t{i}"
        i += 1
    caption = tags.strip()
    assert len(caption) <= 2200 and caption.count("#") > 300
    response = score(served,
                     json={"account": account, "caption": caption, "image": PHOTO_B64, "posted_at": WHEN})
    assert response.status_code == 200, response.text
    assert "too_many_hashtags" in [f["code"] for f in response.json()["flags"]]


def test_valid_drafts_with_the_marker_leave_no_trace_in_answers_or_debug_log(
    served: ServeProcess, account: str) -> None:
    """Accepted drafts too: the caption and photo (with the marker in a JPEG comment) are never logged."""
    pixels = np.asarray(Image.open(io.BytesIO(photo(200))).convert("RGB"))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", comment=MARKER.encode())
    assert MARKER.encode() in out.getvalue()
    payload = {"account": account, "caption": MARKER, "image": base64.b64encode(out.getvalue()).decode(),
               "posted_at": WHEN}
    as_json = score(served, json=payload)
    as_form = score(served, data=form(account), files={"image": ("draft.jpg", out.getvalue(), "image/jpeg")})
    compared = httpx.post(f"{served.url}/v1/compare", json={"account": account, "drafts": [
        {"caption": MARKER, "posted_at": WHEN}, {"caption": f"{MARKER} #ad", "posted_at": WHEN}]},
        timeout=120)
    for response in (as_json, as_form, compared):
        assert response.status_code == 200, response.text
        assert_unharmed(served, account, response)
    assert "POST /v1/score" in served.log()  # the log was captured at all (uvicorn's access lines)


@pytest.mark.parametrize("where", ["draft photo", "history photo"])
def test_a_65000_by_1_strip_costs_under_100_mb_and_well_under_a_second(served: ServeProcess, account: str,
                                                                      where: str) -> None:
    request = draft(account, image=STRIP_B64) if where == "draft photo" else draft(
        account, history=[{**history(1)[0], "image": STRIP_B64}])
    pid = served.process.pid
    reset_peak_memory(pid)
    resident, _ = peak_memory_mb(pid)
    started = time.perf_counter()
    response = score(served, json=request)
    seconds = time.perf_counter() - started
    extra = peak_memory_mb(pid)[1] - resident
    assert response.status_code == 400, response.text
    assert "more elongated than 20:1" in response.text
    assert seconds < 1.0 and extra < 100, f"{seconds:.2f} s, {extra:.0f} MB"
    assert_unharmed(served, account, response)


def test_a_20_to_1_panorama_is_scored(served: ServeProcess, account: str) -> None:
    out = io.BytesIO()
    Image.new("RGB", (2000, 100), (40, 90, 160)).save(out, format="JPEG")
    response = score(served, json=draft(account, caption="A wide view",
                                        image=base64.b64encode(out.getvalue()).decode()))
    assert response.status_code == 200, response.text


def test_error_answers_stay_small_and_come_quickly_whatever_was_sent(served: ServeProcess,
                                                                     account: str) -> None:
    """700,000 unknown keys (9.2 MB) once gave a 60 MB answer after 32 s, echoing every key."""
    keys = {MARKER: 1, **{f"k{i}": 0 for i in range(700_000)}}
    body = json.dumps({**draft(account), **keys}).encode()
    assert len(body) < 10 * 1024 * 1024
    started = time.perf_counter()
    response = score(served, **raw_json(body))
    seconds = time.perf_counter() - started
    assert response.status_code == 422
    assert len(response.content) < 4096 and "has 700,001 unknown fields" in response.text
    assert seconds < 15, f"{seconds:.1f} s"
    many = score(served, json=draft(account, history=[{"caption": 1, "posted_at": "x", "likes": -1}] * 100))
    assert many.status_code == 422 and len(many.content) < 4096
    problems = many.json()["error"]
    assert len(problems) == 21 and problems[-1] == {"field": None,
                                                    "message": "and 280 more problems, not listed"}
    assert_unharmed(served, account, response)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
              st.integers(12, 6000).map(lambda n: int("7" * n) if n <= 4000 else 7)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(
        st.one_of(st.sampled_from(["caption", "posted_at", "likes", "followers", "image", "history"]),
                  st.text(max_size=8)),
        inner, max_size=5)),
    max_leaves=20)


@given(body=st.dictionaries(st.sampled_from(["caption", "followers", "sponsored", "history", "posted_at",
                                             "image", MARKER]),
                            json_values, max_size=6))
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_json_body_gets_a_server_error(served: ServeProcess, account: str, body: dict[str, Any]) -> None:
    response = score(served, **raw_json(json.dumps({"account": account, **body}).encode()))
    assert response.status_code in (200, 400, 422), response.text[:300]
    assert len(response.content) < 4096 and MARKER not in response.text
