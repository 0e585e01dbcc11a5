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
import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from serving_helpers import ServeProcess, photo, png_bomb

pytestmark = pytest.mark.slow  # needs the session's trained smoke model

#: A caption (and photo content) that must never come back in a response or appear in the server's log.
MARKER = f"hostile-marker-{uuid.uuid4().hex}"
WHEN = "2025-03-02T18:00:00Z"  # just after the demo period, so the model knows each account's history
PHOTO = photo(320)
PHOTO_B64 = base64.b64encode(PHOTO).decode()
TWENTY_MB = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def served(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    with ServeProcess(bundle, tmp_path_factory.mktemp("hostile") / "serve.log", "--log-level", "debug") as server:
        yield server


@pytest.fixture(scope="module")
def account(served: ServeProcess) -> str:
    return httpx.get(f"{served.url}/v1/accounts").json()["accounts"][0]


def score(server: ServeProcess, **request: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/score", timeout=120, **request)


def raw_json(body: str | bytes) -> dict[str, Any]:
    """Request arguments for a body that json.dumps could not write (NaN, 1e999, deep nesting)."""
    return {"content": body.encode() if isinstance(body, str) else body, "headers": {"Content-Type": "application/json"}}


def error_fields(response: httpx.Response) -> list[str | None]:
    error = response.json()["error"]
    return [e["field"] for e in (error if isinstance(error, list) else [error])]


def assert_unharmed(server: ServeProcess, account: str, response: httpx.Response) -> None:
    """No marker in the answer or the log, and the next valid draft is scored."""
    for secret in (MARKER, base64.b64encode(MARKER.encode()).decode()[:40]):
        assert secret not in response.text
        assert secret not in server.log()
    following = score(server, json={"account": account, "caption": "A valid draft after the odd one", "image": PHOTO_B64,
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
        lambda a: {"data": form(a), "files": {"image": ("draft.jpg", PHOTO[: len(PHOTO) // 2], "image/jpeg")}},
        400, "image"),
    "PNG decompression bomb uploaded": (
        lambda a: {"data": form(a), "files": {"image": ("draft.png", png_bomb(), "image/png")}}, 400, "image"),
    "text file named .jpg uploaded": (
        lambda a: {"data": form(a), "files": {"image": ("draft.jpg", f"notes: {MARKER}\n".encode() * 50, "image/jpeg")}},
        400, "image"),
    "20 MB JSON body sent in full": (
        lambda a: {"json": draft(a, image=base64.b64encode(b"\xff" * (TWENTY_MB * 3 // 4)).decode())}, 413, "body"),
    "20 MB photo uploaded": (
        lambda a: {"data": form(a), "files": {"image": ("big.jpg", b"\xff\xd8" + b"\x00" * TWENTY_MB, "image/jpeg")}},
        413, "body"),
    "100,000-character caption": (lambda a: {"json": draft(a, caption=MARKER + "x" * 100_000)}, 422, "caption"),
    "10,000 hashtags": (
        lambda a: {"json": draft(a, caption=MARKER + " " + " ".join(f"#tag{i}" for i in range(10_000)))}, 422, "caption"),
    "followers NaN": (
        lambda a: raw_json(json.dumps(draft(a)).replace('"account"', '"followers": NaN, "account"')), 422, "followers"),
    "followers Infinity (1e999)": (
        lambda a: raw_json(json.dumps(draft(a)).replace('"account"', '"followers": 1e999, "account"')), 422, "followers"),
    "followers negative": (lambda a: {"json": draft(a, followers=-1)}, 422, "followers"),
    "followers huge (10**30)": (lambda a: {"json": draft(a, followers=10**30)}, 422, "followers"),
    "followers a fraction": (lambda a: {"json": draft(a, followers=1234.5)}, 422, "followers"),
    "posted_at in year 9999": (lambda a: {"json": draft(a, posted_at="9999-12-31T23:59:59Z")}, 422, "posted_at"),
    "JSON nested 10,000 levels": (lambda a: raw_json(nested(10_000)), 422, "body"),
    "history nested 10,000 levels": (
        lambda a: raw_json(b'{"account": "' + a.encode() + b'", "caption": "' + MARKER.encode() + b'", "history": '
                           + nested(10_000) + b"}"), 422, "body"),
    "history of 10,000 posts": (lambda a: {"json": draft(a, history=history(10_000))}, 422, "history"),
    "multipart history nested 10,000 levels": (
        lambda a: {"data": {**form(a), "history": nested(10_000).decode()}}, 422, "history"),
    "caption with a lone UTF-16 surrogate": (
        lambda a: raw_json(json.dumps(draft(a, caption=MARKER + "\ud800"))), 422, "caption"),
    "JSON body that is not UTF-8": (
        lambda a: raw_json(json.dumps(draft(a)).encode().replace(b'"account"', b'"caption2": "\xff\xfe", "account"')),
        422, "body"),
    "multipart without a boundary": (
        lambda a: {"content": f"account={a}&caption={MARKER}".encode(), "headers": {"Content-Type": "multipart/form-data"}},
        400, "body"),
    "multipart that is not multipart": (
        lambda a: {"content": MARKER.encode() * 100, "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}},
        400, "body"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_hostile_draft_is_refused_with_a_4xx_naming_the_field_and_the_server_keeps_serving(
    served: ServeProcess, account: str, case: str
) -> None:
    build, status, field = REFUSED[case]
    response = score(served, **build(account))
    assert response.status_code == status, response.text[:500]
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
def test_captions_in_other_scripts_are_valid_drafts(served: ServeProcess, account: str, case: str, caption: str) -> None:
    response = score(served, json={"account": account, "caption": caption, "image": PHOTO_B64, "posted_at": WHEN})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["likes"]["low"] <= body["likes"]["expected"] <= body["likes"]["high"]
    assert 0 <= body["authenticity_risk"] <= 1


def test_caption_of_2200_characters_of_hashtags_is_scored_and_flagged(served: ServeProcess, account: str) -> None:
    tags = ""
    i = 0
    while len(tags) + len(f" #t{i}") <= 2200:
        tags += f" #t{i}"
        i += 1
    caption = tags.strip()
    assert len(caption) <= 2200 and caption.count("#") > 300
    response = score(served, json={"account": account, "caption": caption, "image": PHOTO_B64, "posted_at": WHEN})
    assert response.status_code == 200, response.text
    assert "too_many_hashtags" in [f["code"] for f in response.json()["flags"]]


def test_valid_drafts_with_the_marker_leave_no_trace_in_answers_or_debug_log(served: ServeProcess, account: str) -> None:
    """Accepted drafts too: the caption and photo (with the marker in a JPEG comment) are never logged."""
    pixels = np.asarray(Image.open(io.BytesIO(photo(200))).convert("RGB"))
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", comment=MARKER.encode())
    assert MARKER.encode() in out.getvalue()
    payload = {"account": account, "caption": MARKER, "image": base64.b64encode(out.getvalue()).decode(), "posted_at": WHEN}
    as_json = score(served, json=payload)
    as_form = score(served, data=form(account), files={"image": ("draft.jpg", out.getvalue(), "image/jpeg")})
    compared = httpx.post(f"{served.url}/v1/compare", json={"account": account, "drafts": [
        {"caption": MARKER, "posted_at": WHEN}, {"caption": f"{MARKER} #ad", "posted_at": WHEN}]}, timeout=120)
    for response in (as_json, as_form, compared):
        assert response.status_code == 200, response.text
        assert_unharmed(served, account, response)
    assert "POST /v1/score" in served.log()  # the log was captured at all (uvicorn's access lines)
