"""HTTP behaviour of the service with a small in-test scorer: errors, limits, keys, reload, docs, page.

A real uvicorn server in a thread answers real HTTP; the scorer decodes photos with the project's decoder,
so image errors are the real ones. The model itself is tested end to end in test_server.py.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from serving_helpers import SECRET, RecordingScorer, ThreadServer, flat_png, photo, png_bomb

from engage.errors import ModelError
from engage.serving.app import create_app
from engage.serving.limits import LINGER_S
from engage.serving.options import ServeOptions

B64 = base64.b64encode(photo()).decode()
FLAT_40MP_B64 = base64.b64encode(flat_png(6300, 6300)).decode()  # 128 KB that decode to 119 MB


def options(**overrides: Any) -> ServeOptions:
    return ServeOptions(**{"api_key": None, "admin_token": None, **overrides})


@pytest.fixture
def scorer() -> RecordingScorer:
    return RecordingScorer()


@pytest.fixture
def server(scorer: RecordingScorer):
    app = create_app(options(), loader=lambda: scorer)
    with ThreadServer(app) as running:
        _wait_ready(running.url)
        yield running


def _wait_ready(url: str) -> None:
    for _ in range(200):
        if httpx.get(f"{url}/ready").status_code == 200:
            return
        time.sleep(0.02)
    raise RuntimeError("not ready")


def valid(**fields: Any) -> dict[str, Any]:
    return {"account": "anna.bakes", "caption": "Morning bake #bread", "image": B64, **fields}


def assert_still_serving(url: str) -> None:
    response = httpx.post(f"{url}/v1/score", json=valid())
    assert response.status_code == 200, response.text


def error_fields(body: dict[str, Any]) -> list[str]:
    error = body["error"]
    return [e["field"] for e in (error if isinstance(error, list) else [error])]


# --------------------------------------------------------------------------------------------- status


def test_health_answers_while_model_loads_and_ready_only_after(scorer: RecordingScorer) -> None:
    release = threading.Event()

    def slow_loader() -> RecordingScorer:
        release.wait(timeout=30)
        return scorer

    with ThreadServer(create_app(options(), loader=slow_loader)) as running:
        assert httpx.get(f"{running.url}/health").json() == {"status": "ok"}
        loading = httpx.get(f"{running.url}/ready")
        assert loading.status_code == 503 and loading.json()["status"] == "loading"
        refused = httpx.post(f"{running.url}/v1/score", json=valid())
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        release.set()
        _wait_ready(running.url)
        assert httpx.get(f"{running.url}/ready").json() == {
            "status": "ready", "model": "engage", "version": "fake/1", "embedder": "fake:embedder",
            "error": None,
            "batching": {"max_batch_size": 1},
            "vector_cache": {"max_items": 0, "items": 0, "hits": 0, "misses": 0}}


def test_model_that_fails_to_load_reports_why_and_stops_the_server() -> None:
    failures: list[str] = []

    def broken_loader() -> None:
        raise ModelError("models/x is incomplete: bundle.joblib is missing; retrain or re-export the model")

    with ThreadServer(create_app(options(model="models/x"), loader=broken_loader,
                                 on_startup_failure=failures.append)) as running:
        for _ in range(200):
            if failures:
                break
            time.sleep(0.02)
        ready = httpx.get(f"{running.url}/ready")
    assert failures == ["cannot serve model models/x: models/x is incomplete: bundle.joblib is missing; "
                        "retrain or re-export the model"]
    assert ready.status_code == 503 and ready.json()["status"] == "failed"
    assert "bundle.joblib is missing" in ready.json()["error"]


def test_accounts_lists_the_models_known_accounts_sorted(server: ThreadServer) -> None:
    assert httpx.get(f"{server.url}/v1/accounts").json() == {"accounts": ["anna.bakes", "ben.runs"]}


# --------------------------------------------------------------------------------------------- scoring


def test_multipart_upload_gives_the_model_the_same_draft_as_json_base64(
    server: ThreadServer, scorer: RecordingScorer) -> None:
    fields = {"account": "anna.bakes", "caption": "Crumb shot #bread #sourdough",
              "posted_at": "2024-05-12T09:00:00Z",
              "followers": 5400, "sponsored": True,
        "history": [{"caption": "old", "posted_at": "2024-05-01T08:00:00Z", "likes": 40, "comments": 3}]}
    as_json = httpx.post(f"{server.url}/v1/score", json={**fields, "image": B64})
    form = {k: (json.dumps(v) if k == "history" else str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in fields.items()}
    as_form = httpx.post(f"{server.url}/v1/score", data=form,
                         files={"image": ("p.jpg", photo(), "image/jpeg")})
    assert as_json.status_code == 200 and as_form.status_code == 200, as_form.text
    assert as_json.json() == as_form.json()
    first, second = scorer.drafts
    assert first.model_dump() == second.model_dump()
    assert first.image == photo() and first.followers == 5400 and first.sponsored is True
    assert len(first.history) == 1 and first.history[0].likes == 40


def test_urlencoded_form_is_scored_like_json(server: ThreadServer, scorer: RecordingScorer) -> None:
    response = httpx.post(f"{server.url}/v1/score",
                          data={"account": "anna.bakes", "caption": "Morning bake #bread",
                                                           "followers": "120", "posted_at": ""})
    assert response.status_code == 200, response.text
    assert scorer.drafts[-1].followers == 120 and scorer.drafts[-1].caption == "Morning bake #bread"


def test_data_url_image_is_accepted_like_plain_base64(server: ThreadServer, scorer: RecordingScorer) -> None:
    response = httpx.post(f"{server.url}/v1/score", json=valid(image=f"data:image/jpeg;base64,{B64}"))
    assert response.status_code == 200
    assert scorer.drafts[-1].image == photo()


def test_compare_ranks_by_expected_likes_with_differences_and_best_hour(server: ThreadServer) -> None:
    drafts = [{"caption": "#a #b #c"}, {"caption": "plain", "image": B64}, {"caption": "#a"}]
    response = httpx.post(f"{server.url}/v1/compare",
                          json={"account": "anna.bakes", "drafts": drafts, "best_hour": True})
    assert response.status_code == 200, response.text
    body = response.json()
    # expected likes: 91, 110, 97
    assert [d["index"] for d in body["drafts"]] == [1, 2, 0]
    assert [d["rank"] for d in body["drafts"]] == [1, 2, 3]
    assert [d["likes_vs_first"] for d in body["drafts"]] == [19.0, 6.0, 0.0]
    assert [d["likes_vs_best"] for d in body["drafts"]] == [0.0, -13.0, -19.0]
    assert [d["vs_first"] for d in body["drafts"]] == [19.0, 6.0, 0.0]  # the goal is likes by default
    assert body["goal"] == "likes"
    assert body["best_hour"] == {"posted_at": "2030-01-01T18:00:00Z", "time_zone": "UTC", "goal": "likes",
                                 "expected": 123.0,
                                 "expected_likes": 123.0}
    # What the risk figure means travels with the ranking and with every draft's score.
    assert body["risk_label"] == "an engagement-drop proxy (fake model)"
    assert {d["score"]["risk_label"] for d in body["drafts"]} == {"an engagement-drop proxy (fake model)"}


def test_compare_ranks_by_the_goal_with_its_differences_and_the_goals_best_hour(server: ThreadServer) -> None:
    # expected likes 110, 97, 100; expected saves 10, 20, 15: by saves the order is not the order by likes
    drafts = [{"caption": "plain", "image": B64}, {"caption": "tip tip #a"}, {"caption": "one tip"}]
    response = httpx.post(f"{server.url}/v1/compare",
                          json={"account": "anna.bakes", "drafts": drafts, "goal": "saves",
                                                             "best_hour": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["goal"] == "saves"
    assert [d["index"] for d in body["drafts"]] == [1, 2, 0]
    assert [d["vs_first"] for d in body["drafts"]] == [10.0, 5.0, 0.0]
    assert [d["vs_best"] for d in body["drafts"]] == [0.0, -5.0, -10.0]
    # likes differences stay beside
    assert [d["likes_vs_first"] for d in body["drafts"]] == [-13.0, -10.0, 0.0]
    assert body["best_hour"] == {"posted_at": "2030-01-01T18:00:00Z", "time_zone": "UTC", "goal": "saves",
                                 "expected": 45.0,
                                 "expected_likes": 123.0}


@pytest.mark.parametrize(("goal", "status", "message"), [
    ("impressions", 409, "this model predicts no impressions"),  # a registry target this model lacks
    ("retweets", 422, "Input should be"),  # not a count target at all
])
def test_compare_by_a_goal_the_model_cannot_rank_by_is_refused_naming_goal(
    server: ThreadServer, goal: str, status: int,
                                                                             message: str) -> None:
    response = httpx.post(f"{server.url}/v1/compare", json={"account": "a", "goal": goal,
                                                             "drafts": [{"caption": "a"}, {"caption": "b"}]})
    assert response.status_code == status, response.text
    assert error_fields(response.json()) == ["goal"]
    assert message in json.dumps(response.json())


def test_targets_lists_the_models_count_targets_with_labels_and_goals(server: ThreadServer) -> None:
    body = httpx.get(f"{server.url}/v1/targets").json()
    assert [t["name"] for t in body["targets"]] == ["likes", "comments", "saves"]
    assert body["targets"][2] == {"name": "saves", "label": "saves", "goal": "content quality",
                                  "description": "saved to come back to: content worth keeping"}
    assert body["default_goal"] == "likes"


def test_feed_serves_the_accounts_stored_photos_and_an_empty_list_for_others(server: ThreadServer) -> None:
    body = httpx.get(f"{server.url}/v1/feed", params={"account": "anna.bakes"}).json()
    assert body == {"account": "anna.bakes",
                    "photos": ["data:image/jpeg;base64,AAAA", "data:image/jpeg;base64,BBBB"]}
    assert httpx.get(f"{server.url}/v1/feed", params={"account": "nobody"}).json()["photos"] == []
    response = httpx.get(f"{server.url}/v1/feed")
    assert response.status_code == 422 and error_fields(response.json()) == ["account"]


def test_score_answers_every_target_under_its_name_and_null_for_the_others(server: ThreadServer) -> None:
    # "tip" 4 times
    body = httpx.post(f"{server.url}/v1/score", json=valid(caption="three tips: tip tip tip")).json()
    # A model without the level and uplift split (the stand-in) answers them as null, never leaves them out.
    assert body["saves"] == {"expected": 30.0, "low": 5.0, "high": 40.0, "usual": None,
                             "uplift_percent": None}
    assert body["likes"]["expected"] == 110.0
    assert body["impressions"] is None and body["follows"] is None


def test_compare_takes_the_accounts_followers_and_history_for_every_draft_and_the_best_hour(
        server: ThreadServer, scorer: RecordingScorer) -> None:
    history = [{"caption": "My starter is alive", "posted_at": "2024-05-01T08:00:00Z", "likes": 40,
                "image": B64},
               {"caption": "Flour haul", "posted_at": "2024-05-05T18:30:00Z", "likes": 25, "comments": 1}]
    own = [{"caption": "a rye loaf", "posted_at": "2024-05-02T08:00:00Z", "likes": 9}]
    drafts = [{"caption": "First loaf!"}, {"caption": "#bread", "followers": 5, "history": own}]
    response = httpx.post(f"{server.url}/v1/compare", json={
        "account": "new.baker", "followers": 800, "history": history, "drafts": drafts, "best_hour": True})
    assert response.status_code == 200, response.text
    first, second = scorer.drafts[-2:]
    assert first.followers == 800 and [h.caption for h in first.history] == [
        "My starter is alive", "Flour haul"]
    assert first.history[0].image == photo() and first.history[1].comments == 1
    assert second.followers == 5 and [h.caption for h in second.history] == ["a rye loaf"]  # its own win
    top = scorer.best_hour_drafts[-1]  # "First loaf!" has no hashtags, so it ranks first
    assert top.caption == "First loaf!" and top.followers == 800 and len(top.history) == 2


def test_a_bad_photo_in_the_compares_shared_history_is_named_at_the_top_level(server: ThreadServer) -> None:
    text = base64.b64encode(b"just some text, not a photo").decode()
    history = [{"caption": "ok", "posted_at": "2024-05-01T08:00:00Z", "likes": 4, "image": text}]
    response = httpx.post(f"{server.url}/v1/compare", json={
        "account": "new.baker", "history": history, "drafts": [{"caption": "a"}, {"caption": "b"}]})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "history[0].image"


def test_compare_without_best_hour_leaves_it_out(server: ThreadServer) -> None:
    response = httpx.post(f"{server.url}/v1/compare",
                          json={"account": "x", "drafts": [{"caption": "a"}, {"caption": "b"}]})
    assert response.status_code == 200 and response.json()["best_hour"] is None


# --------------------------------------------------------------------------------------------- errors

ERROR_CASES = {
    "invalid JSON": ({"content": b'{"account": "a", "caption": "' + SECRET.encode() + b'"',
                      "headers": {"Content-Type": "application/json"}}, 400, "body"),
    "JSON that is not an object": ({"json": [SECRET]}, 422, "body"),
    "wrong type": ({"json": valid(caption=SECRET, followers="many")}, 422, "followers"),
    "missing account": ({"json": {"caption": SECRET}}, 422, "account"),
    "unknown field": ({"json": valid(caption=SECRET, likes=5)}, 422, "body"),
    "unknown field named with the secret": ({"json": {**valid(), SECRET: 1}}, 422, "body"),
    "unknown field in a history post": ({"json": valid(
        history=[{"posted_at": "2024-01-01T00:00:00Z", "likes": 1, SECRET: 2}])}, 422, "history[0]"),
    "unknown multipart field named with the secret": ({"data": {"account": "a", SECRET: "x"}}, 422, "body"),
    "number of 5,000 digits": ({"content": b'{"account": "a", "followers": ' + b"7" * 5000 + b"}",
                                "headers": {"Content-Type": "application/json"}}, 422, "followers"),
    "number of 5,000 digits in multipart history": ({"data": {"account": "a",
                                                              "history": '[{"posted_at": '
        '"2024-01-01T00:00:00Z", "likes": ' + "7" * 5000 + "}]"}}, 422, "history[0].likes"),
    "account of white space": ({"json": valid(account=" \t ")}, 422, "account"),
    "gzip Content-Encoding": ({"content": b"\x1f\x8b" + SECRET.encode(), "headers": {
        "Content-Type": "application/json", "Content-Encoding": "gzip"}}, 415, "Content-Encoding"),
    "urlencoded form of 9 MB of separators": ({"content": b"&" * 9_000_000, "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, 400, "body"),
    "urlencoded form without account": ({"content": f"caption={SECRET}".encode(), "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, 422, "account"),
    "three flat 40-megapixel history photos (over the request's pixel budget)": (
        {"json": valid(image=None, history=[{"posted_at": "2024-01-01T00:00:00Z", "likes": 1,
                                             "image": FLAT_40MP_B64}] * 3)}, 400, "history[2].image"),
    "thin strip photo (65000 x 1)": ({"json": valid(image=base64.b64encode(png_bomb(65000, 1)).decode())},
                                     400, "image"),
    "caption over 2,200 characters": ({"json": valid(caption=SECRET + "x" * 2200)}, 422, "caption"),
    "history over 500 posts": ({"json": valid(caption=SECRET, history=[
        {"caption": SECRET, "posted_at": "2024-01-01T00:00:00Z", "likes": 1}] * 501)}, 422, "history"),
    "history post without likes": ({"json": valid(caption=SECRET, history=[
        {"caption": SECRET, "posted_at": "2024-01-01T00:00:00Z"}])}, 422, "history[0].likes"),
    "posted_at before 2010": ({"json": valid(caption=SECRET, posted_at="1999-01-01T00:00:00Z")}, 422,
                              "posted_at"),
    "posted_at in year 1 with an offset (overflows converting to UTC)": (
        {"json": valid(caption=SECRET, posted_at="0001-01-01T00:00:00+01:00")}, 422, "posted_at"),
    "history post in year 9999 with a negative offset": ({"json": valid(caption=SECRET, history=[
        {"posted_at": "9999-12-31T23:00:00-05:00", "likes": 1}])}, 422, "history[0].posted_at"),
    "image not base64": ({"json": valid(caption=SECRET, image="not base64 at all!" + SECRET)}, 400, "image"),
    "image not an image": (
        {"json": valid(caption=SECRET, image=base64.b64encode(SECRET.encode() * 10).decode())}, 400, "image"),
    "truncated image": ({"json": valid(caption=SECRET, image=base64.b64encode(photo()[:300]).decode())}, 400,
                        "image"),
    "decompression bomb": ({"json": valid(caption=SECRET, image=base64.b64encode(png_bomb()).decode())}, 400,
                           "image"),
    "history image not an image": ({"json": valid(caption=SECRET,
                                                  history=[{"caption": "x",
                                                            "posted_at": "2" "0" "2" "4" "-"
                                                            "01-01T00:00:00Z", "likes": 1,
                                                            "image": base64.b64encode(b"nope").decode()}])},
                                                            400, "history[0].image"),
    "multipart file not an image": ({"data": {"account": "a", "caption": SECRET}, "files": {
        "image": ("x.jpg", SECRET.encode(), "image/jpeg")}}, 400, "image"),
    "multipart history not JSON": ({"data": {"account": "a", "caption": SECRET, "history": "[{"}}, 422,
                                   "history"),
    "multipart field twice": ({"data": {"account": ["a", "b"], "caption": SECRET}}, 422, "account"),
    "unsupported content type": ({"content": SECRET.encode(), "headers": {"Content-Type": "text/plain"}}, 415,
                                 "Content-Type"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_bad_request_names_the_field_never_echoes_data_and_server_keeps_serving(
    server: ThreadServer, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    request, status, field = ERROR_CASES[case]
    caplog.set_level(logging.DEBUG)
    response = httpx.post(f"{server.url}/v1/score", **request)
    assert response.status_code == status, response.text
    assert field in error_fields(response.json())
    assert SECRET not in response.text and "input" not in response.json()["error"]
    assert SECRET not in caplog.text
    assert_still_serving(server.url)


def test_body_declared_over_10_mb_is_refused_with_413_before_it_is_sent(server: ThreadServer) -> None:
    # The server answers at once, then lingers up to LINGER_S for the body it was promised before it closes:
    # wait longer than that for the close (a 10 s timeout raced the 10 s linger and failed under load).
    with socket.create_connection(("127.0.0.1", server.port), timeout=LINGER_S + 10) as conn:
        conn.sendall(b"POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 20000000\r\n\r\n")
        reply = b""
        while chunk := conn.recv(65536):  # the server closes the connection after answering
            reply += chunk
    reply = reply.decode()
    status_line, _, rest = reply.partition("\r\n")
    assert status_line == "HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(rest.split("\r\n\r\n", 1)[1])["error"]["field"] == "body"
    assert_still_serving(server.url)


def test_body_streamed_past_10_mb_without_content_length_is_refused_with_413(server: ThreadServer) -> None:
    def chunks():
        for _ in range(10):
            yield b"x" * (1024 * 1024)
        yield b"x" * 100  # the byte that crosses the cap comes last, so the client is not cut off mid-send

    response = httpx.post(f"{server.url}/v1/score", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"
    assert_still_serving(server.url)


def test_several_problems_are_all_named(server: ThreadServer) -> None:
    response = httpx.post(f"{server.url}/v1/score", json={"caption": 5, "followers": -1})
    assert response.status_code == 422
    assert sorted(error_fields(response.json())) == ["account", "caption", "followers"]


@pytest.mark.parametrize(("drafts", "status", "field"), [
    ([{"caption": "only one"}], 422, "drafts"),
    ([{"caption": "a"}] * 11, 422, "drafts"),
    ([{"caption": "a"}, {"caption": "b", "image": "%%%"}], 400, "drafts[1].image"),
    ([{"caption": "a"}, {"caption": "b", "image": base64.b64encode(b"GIF89a").decode()}], 400,
     "drafts[1].image"),
    ([{"caption": "a", "followers": "x"}, {"caption": "b"}], 422, "drafts[0].followers"),
])
def test_compare_errors_name_the_draft_and_field(server: ThreadServer, drafts: list, status: int,
                                                 field: str) -> None:
    response = httpx.post(f"{server.url}/v1/compare", json={"account": "anna.bakes", "drafts": drafts})
    assert response.status_code == status, response.text
    assert error_fields(response.json()) == [field]
    response = httpx.post(f"{server.url}/v1/compare",
                          json={"account": "a", "drafts": [{"caption": "a"}, {"caption": "b"}]})
    assert response.status_code == 200


def test_failure_inside_the_model_is_a_500_without_details_and_the_server_keeps_serving(
    scorer: RecordingScorer) -> None:
    calls = {"n": 0}
    real_score = scorer.score

    def flaky(draft: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"bug while scoring {draft.caption}")
        return real_score(draft)

    scorer.score = flaky  # type: ignore[method-assign]
    with ThreadServer(create_app(options(), loader=lambda: scorer)) as running:
        _wait_ready(running.url)
        failed = httpx.post(f"{running.url}/v1/score", json=valid(caption=SECRET))
        assert failed.status_code == 500
        assert failed.json() == {"error": {"field": None,
            "message": "internal error while scoring; the server log has the details"}}
        assert_still_serving(running.url)


# --------------------------------------------------------------------------------------------- limits


def test_overload_is_answered_503_with_retry_after_and_health_stays_responsive(
    scorer: RecordingScorer) -> None:
    scorer.gate = threading.Event()
    app = create_app(options(max_concurrent=1, max_queue=1, retry_after_s=3), loader=lambda: scorer)
    with ThreadServer(app) as running, ThreadPoolExecutor(2) as pool:
        _wait_ready(running.url)
        first = pool.submit(httpx.post, f"{running.url}/v1/score", json=valid(), timeout=30)
        assert scorer.entered.acquire(timeout=10)  # first is running
        second = pool.submit(httpx.post, f"{running.url}/v1/score", json=valid(), timeout=30)
        for _ in range(500):  # second is admitted and waiting for the slot
            if app.state.admission.waiting == 1:
                break
            time.sleep(0.01)
        third = httpx.post(f"{running.url}/v1/score", json=valid())
        assert third.status_code == 503
        assert third.headers["Retry-After"] == "3"
        assert "busy" in third.json()["error"]["message"]
        assert httpx.get(f"{running.url}/health", timeout=2).status_code == 200
        scorer.gate.set()
        assert first.result().status_code == 200 and second.result().status_code == 200
        assert httpx.post(f"{running.url}/v1/score", json=valid()).status_code == 200


def test_api_key_guards_v1_but_not_health_and_ready(scorer: RecordingScorer) -> None:
    with ThreadServer(create_app(options(api_key="s3cret"), loader=lambda: scorer)) as running:
        _wait_ready(running.url)
        missing = httpx.post(f"{running.url}/v1/score", json=valid())
        wrong = httpx.post(f"{running.url}/v1/score", json=valid(), headers={"X-API-Key": "guess"})
        right = httpx.post(f"{running.url}/v1/score", json=valid(), headers={"X-API-Key": "s3cret"})
        accounts = httpx.get(f"{running.url}/v1/accounts")
        assert (missing.status_code, wrong.status_code, right.status_code,
                accounts.status_code) == (401, 401, 200, 401)
        assert missing.json()["error"]["field"] == "X-API-Key" and "missing" in missing.json()["error"][
            "message"]
        assert "not a valid" in wrong.json()["error"]["message"]
        assert httpx.get(f"{running.url}/health").status_code == 200
        assert httpx.get(f"{running.url}/ready").status_code == 200


# --------------------------------------------------------------------------------------------- reload


def test_reload_is_hidden_without_admin_token(server: ThreadServer) -> None:
    assert httpx.post(f"{server.url}/admin/reload", headers={"Authorization": "Bearer x"}).status_code == 404


def test_reload_swaps_the_model_and_lets_requests_in_flight_finish_on_the_old_one() -> None:
    old, new = RecordingScorer("fake/1"), RecordingScorer("fake/2")
    models = iter([old, new])
    old.gate = threading.Event()
    app = create_app(options(admin_token="adm"), loader=lambda: next(models))
    with ThreadServer(app) as running, ThreadPoolExecutor(1) as pool:
        _wait_ready(running.url)
        in_flight = pool.submit(httpx.post, f"{running.url}/v1/score", json=valid(), timeout=30)
        assert old.entered.acquire(timeout=10)
        assert httpx.post(f"{running.url}/admin/reload",
                          headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert httpx.post(f"{running.url}/admin/reload").status_code == 403
        reloaded = httpx.post(f"{running.url}/admin/reload", headers={"Authorization": "Bearer adm"})
        assert reloaded.status_code == 200
        assert reloaded.json() == {"status": "reloaded", "previous_version": "fake/1", "version": "fake/2",
                                   "embedder": "fake:embedder"}
        assert httpx.post(f"{running.url}/v1/score", json=valid()).json()["model_version"] == "fake/2"
        old.gate.set()
        assert in_flight.result().json()["model_version"] == "fake/1"
        assert httpx.get(f"{running.url}/ready").json()["version"] == "fake/2"


@pytest.mark.parametrize(("failure", "status"), [
    (ModelError("models/x is incomplete: context.parquet is missing; retrain or re-export the model"), 409),
    (RuntimeError("disk on fire"), 500),
])
def test_reload_refuses_a_model_that_fails_and_keeps_serving_the_old_one(
    failure: Exception, status: int) -> None:
    first = RecordingScorer("fake/1")
    calls = iter([first])

    def loader() -> RecordingScorer:
        try:
            return next(calls)
        except StopIteration:
            raise failure from None

    with ThreadServer(create_app(options(admin_token="adm"), loader=loader)) as running:
        _wait_ready(running.url)
        refused = httpx.post(f"{running.url}/admin/reload", headers={"Authorization": "Bearer adm"})
        assert refused.status_code == status
        assert refused.json()["error"]["field"] == "model"
        assert str(failure) in refused.json()["error"]["message"]
        assert "current one keeps serving" in refused.json()["error"]["message"]
        assert httpx.post(f"{running.url}/v1/score", json=valid()).json()["model_version"] == "fake/1"
        assert httpx.get(f"{running.url}/ready").json()["version"] == "fake/1"


# --------------------------------------------------------------------------------------------- docs, page


def test_openapi_documents_both_bodies_of_score_with_examples(server: ThreadServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    score_body = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]
    assert set(score_body) == {"application/json", "multipart/form-data"}
    assert {"known account", "sponsored", "new account"} <= set(score_body["application/json"]["examples"])
    assert score_body["multipart/form-data"]["schema"]["properties"]["image"]["format"] == "binary"
    compare_body = spec["paths"]["/v1/compare"]["post"]["requestBody"]["content"]["application/json"]
    assert compare_body["examples"]["two captions"]["value"]["best_hour"] is True
    schemas = spec["components"]["schemas"]
    assert schemas["ScoreRequest"]["properties"]["caption"]["maxLength"] == 2200
    assert schemas["DraftIn"]["properties"]["history"]["anyOf"][0]["maxItems"] == 500
    assert schemas["ScoreResponse"]["examples"]
    assert "/admin/reload" not in spec["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_the_draft_studio_page_and_its_assets_are_served(server: ThreadServer) -> None:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="caption-a"' in page.text and "/static/studio.js" in page.text
    script = httpx.get(f"{server.url}/static/studio.js")
    assert script.status_code == 200 and "/v1/score" in script.text and "/v1/compare" in script.text
    assert httpx.get(f"{server.url}/static/studio.css").status_code == 200
