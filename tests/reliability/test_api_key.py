"""The optional API key on every scoring route and body type, with hostile keys; status routes stay open.

tests/serving proves the key on JSON /v1/score and /v1/accounts; this covers /v1/compare, multipart uploads,
keys that differ only in length or case, non-ASCII and huge header values (401, never a 5xx), and that the
page, /docs and /openapi.json need no key. Runs the real app in a uvicorn thread with the serving tests'
small scorer, so it is fast.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest
from serving_helpers import RecordingScorer, ThreadServer, photo

from engage.serving.app import create_app
from engage.serving.options import ServeOptions

KEY = "k3y-Correct-Horse"
PHOTO = photo()


@pytest.fixture(scope="module")
def keyed():
    app = create_app(ServeOptions(api_key=KEY, admin_token=None), loader=RecordingScorer)
    with ThreadServer(app) as running:
        for _ in range(500):
            if httpx.get(f"{running.url}/ready").status_code == 200:
                break
            time.sleep(0.02)
        yield running


def score_json(headers: dict[str, str | bytes]) -> dict[str, Any]:
    return {"json": {"account": "anna.bakes", "caption": "hi", "image": base64.b64encode(PHOTO).decode()},
            "headers": headers}


def score_form(headers: dict[str, str | bytes]) -> dict[str, Any]:
    return {"data": {"account": "anna.bakes", "caption": "hi"},
            "files": {"image": ("p.jpg", PHOTO, "image/jpeg")},
            "headers": headers}


def compare(headers: dict[str, str | bytes]) -> dict[str, Any]:
    return {"json": {"account": "anna.bakes", "drafts": [{"caption": "a"}, {"caption": "b"}]},
            "headers": headers}


ROUTES = {"score JSON": ("/v1/score", score_json), "score multipart": ("/v1/score", score_form),
          "compare": ("/v1/compare", compare)}
WRONG_KEYS = {
    "missing": {},
    "empty": {"X-API-Key": ""},
    "a prefix of the key": {"X-API-Key": KEY[:-1]},
    "the key and more": {"X-API-Key": KEY + "x"},
    "other case": {"X-API-Key": KEY.upper()},
    "non-ASCII (latin-1 bytes)": {"X-API-Key": "k3y-Corr\xe9ct".encode("latin-1")},
    "non-ASCII (UTF-8 bytes)": {"X-API-Key": "k3y-🔑".encode()},
    "8 KB long": {"X-API-Key": "k" * 8000},
    "in another header": {"Authorization": f"Bearer {KEY}"},
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("wrong", list(WRONG_KEYS))
def test_scoring_routes_refuse_a_wrong_key_with_401_naming_the_header(keyed: ThreadServer, route: str,
                                                                      wrong: str) -> None:
    path, build = ROUTES[route]
    response = httpx.post(f"{keyed.url}{path}", **build(WRONG_KEYS[wrong]))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["field"] == "X-API-Key"
    assert KEY not in response.text


@pytest.mark.parametrize("route", list(ROUTES))
def test_scoring_routes_answer_with_the_right_key(keyed: ThreadServer, route: str) -> None:
    path, build = ROUTES[route]
    response = httpx.post(f"{keyed.url}{path}", **build({"X-API-Key": KEY}))
    assert response.status_code == 200, response.text


def test_a_wrong_key_is_refused_before_the_body_is_parsed(keyed: ThreadServer) -> None:
    """Without the key, even a body that is not JSON gets 401, not 422: nothing is parsed for strangers."""
    response = httpx.post(f"{keyed.url}/v1/score", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/ready", "/", "/docs", "/openapi.json", "/static/studio.js"])
def test_status_page_and_docs_need_no_key(keyed: ThreadServer, path: str) -> None:
    assert httpx.get(f"{keyed.url}{path}").status_code == 200
