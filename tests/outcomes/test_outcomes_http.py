"""The outcome loop over HTTP: every score recorded with a
score_id, outcomes posted against it, accuracy read back."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_helpers import RecordingScorer, ThreadServer

from engage.outcomes import OutcomeStore
from engage.serving.app import create_app
from engage.serving.options import ServeOptions

POSTED = "2030-01-02T09:00:00Z"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'outcomes.db'}"


@pytest.fixture
def server(db: str):
    app = create_app(ServeOptions(api_key=None, admin_token=None, outcomes=db), loader=RecordingScorer)
    with ThreadServer(app) as running:
        for _ in range(200):
            if httpx.get(f"{running.url}/ready").status_code == 200:
                break
        yield running


def _score(url: str, caption: str, account: str = "anna.bakes") -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/score", json={"account": account, "caption": caption})
    assert response.status_code == 200, response.text
    return response.json()


def _outcome(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/outcomes", json={"posted_at": POSTED, "age_hours": 24, **body})


def test_a_scored_draft_once_its_outcome_is_posted_appears_in_accuracy(server: ThreadServer, db: str) -> None:
    scored = _score(server.url, "plain")  # the stand-in expects 100 likes (50..150) and 5 comments (2..9)
    assert len(scored["score_id"]) == 32 and "_features" not in scored
    recorded = OutcomeStore(db).score(scored["score_id"])
    assert recorded["prediction"]["likes"] == {"expected": 100.0, "low": 50.0, "high": 150.0}
    assert recorded["model_version"] == "fake/1" and recorded["caption"] == "plain" and recorded[
        "photo"] is None

    response = _outcome(server.url, score_id=scored["score_id"], post_id="C1", likes=130, comments=12)
    assert response.status_code == 201, response.text
    assert response.json()["counts"] == {"likes": 130, "comments": 12}
    # 7 days later: a second record of the same post, the
    # score found from the post (a permalink stands for it)
    later = _outcome(server.url, permalink="https://www.instagram.com/p/C1/", age_hours=168, likes=160)
    assert later.status_code == 201, later.text
    assert later.json()["score_id"] == scored["score_id"]

    body = httpx.get(f"{server.url}/v1/accuracy", params={"account": "anna.bakes"}).json()
    assert body["scored"] == 1 and body["published"] == 1
    likes = next(t for t in body["targets"] if t["target"] == "likes")
    # 160 (latest) vs 50..150
    assert likes["posts"] == 1 and likes["mae"] == 60.0 and likes["coverage"] == 0.0
    assert body["points"][0]["actual"] == 160.0 and body["points"][0]["expected"] == 100.0
    at_24 = httpx.get(f"{server.url}/v1/accuracy", params={"account": "anna.bakes", "age_hours": 24}).json()
    assert next(t for t in at_24["targets"] if t["target"] == "likes")["mae"] == 30.0
    comments = next(t for t in at_24["targets"] if t["target"] == "comments")
    assert comments["mae"] == 7.0 and comments["coverage"] == 0.0  # 12 outside 2..9
    assert httpx.get(f"{server.url}/v1/accuracy", params={"account": "ben.runs"}).json()["published"] == 0
    plot = httpx.get(f"{server.url}/v1/accuracy/plot", params={"account": "anna.bakes"})
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")


def test_compare_records_every_draft_with_its_rank_and_accuracy_counts_the_better_one(
    server: ThreadServer) -> None:
    drafts = [{"caption": "#a #b #c"}, {"caption": "plain"}, {"caption": "#a"}]  # expected likes 91, 100, 97
    body = httpx.post(f"{server.url}/v1/compare", json={"account": "anna.bakes", "drafts": drafts}).json()
    assert len(body["compare_id"]) == 32
    ids = {d["index"]: d["score"]["score_id"] for d in body["drafts"]}
    assert len(set(ids.values())) == 3
    # The top-ranked draft (index 1) did best; draft 0 beat draft 2 although ranked below it.
    for hour, (index, likes) in enumerate(((1, 300), (0, 120), (2, 90))):
        assert _outcome(server.url, score_id=ids[index], post_id=f"P{index}", likes=likes,
                        posted_at=f"2030-01-02T0{hour}:00:00Z").status_code == 201
    likes = next(t for t in httpx.get(f"{server.url}/v1/accuracy").json()["targets"]
                 if t["target"] == "likes")
    assert likes["compared_right"] == 1.0
    assert likes["ranked_pairs"] == 3 and likes["ranked_right"] == pytest.approx(2 / 3)
    # earlier outcomes
    assert likes["baseline_mae"] == pytest.approx((abs(300 - 120) + abs((300 + 120) / 2 - 90)) / 2)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"score_id": "unknown", "post_id": "X", "likes": 1}, 422, "score_id"),
    ({"post_id": "never-linked", "likes": 1}, 422, "score_id"),
    ({"post_id": "X", "likes": -1}, 422, "likes"),
    ({"post_id": "X", "comments": -5, "likes": 1}, 422, "comments"),
    ({"post_id": "X", "likes": 1, "age_hours": -24}, 422, "age_hours"),
    ({"likes": 1}, 422, "post_id"),
    ({"permalink": "https://example.com/not-a-post", "likes": 1}, 422, "permalink"),
    ({"post_id": "X"}, 422, "likes"),
    ({"post_id": "X", "likes": 1, "views_count": 3}, 422, "body"),
    ({"post_id": "X", "likes": 1, "posted_at": "0001-01-01T00:00:00+01:00"}, 422, "posted_at"),
    ({"post_id": "X", "likes": 10**13}, 422, "likes"),
    ({"post_id": "X\u0000Y", "likes": 1}, 422, "post_id"),
])
def test_bad_outcome_input_gets_a_4xx_naming_the_field(server: ThreadServer, body: dict, status: int,
                                                       field: str) -> None:
    scored = _score(server.url, "plain")
    body = {"score_id": scored["score_id"],
            **body} if "score_id" not in body and "never-linked" not in str(body) else body
    response = _outcome(server.url, **body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error if isinstance(error, dict) else error[0])["field"] == field


def test_a_post_id_matching_two_scores_and_a_repeated_age_are_conflicts(
    server: ThreadServer, db: str) -> None:
    first, second = _score(server.url, "one")["score_id"], _score(server.url, "two")["score_id"]
    assert _outcome(server.url, score_id=first, post_id="SAME", likes=10).status_code == 201
    clash = _outcome(server.url, score_id=second, post_id="SAME", likes=11)
    assert clash.status_code == 409 and clash.json()["error"]["field"] == "post_id"
    assert first in clash.json()["error"]["message"]
    again = _outcome(server.url, score_id=first, post_id="SAME", likes=12)
    assert again.status_code == 409 and again.json()["error"]["field"] == "age_hours"
    other_post = _outcome(server.url, score_id=first, post_id="OTHER", age_hours=48, likes=12)
    assert other_post.status_code == 409 and other_post.json()["error"]["field"] == "post_id"
    assert OutcomeStore(db).count("outcomes") == 1  # nothing of the refused ones was written


def test_outcome_endpoints_sit_behind_the_api_key(db: str) -> None:
    app = create_app(ServeOptions(api_key="k3y-0123456789abcdef", admin_token=None, outcomes=db),
                     loader=RecordingScorer)
    with ThreadServer(app) as server:
        assert httpx.post(f"{server.url}/v1/outcomes", json={}).status_code == 401
        assert httpx.get(f"{server.url}/v1/accuracy").status_code == 401
        assert httpx.get(f"{server.url}/v1/accuracy/plot").status_code == 401
        assert httpx.get(f"{server.url}/v1/accuracy",
                         headers={"X-API-Key": "k3y-0123456789abcdef"}).status_code == 200


def test_without_a_store_scores_carry_no_id_and_outcomes_are_a_404() -> None:
    app = create_app(ServeOptions(api_key=None, admin_token=None, outcomes=None), loader=RecordingScorer)
    with ThreadServer(app) as server:
        for _ in range(200):
            if httpx.get(f"{server.url}/ready").status_code == 200:
                break
        assert _score(server.url, "x")["score_id"] is None
        assert _outcome(server.url, post_id="X", likes=1).status_code == 404


def test_concurrent_writers_over_http_lose_nothing(server: ThreadServer, db: str) -> None:
    ids = [_score(server.url, f"draft {i}")["score_id"] for i in range(48)]
    failures: list[str] = []

    def post(chunk: list[tuple[int, str]]) -> None:
        with httpx.Client(timeout=60) as client:
            for i, score_id in chunk:
                for age in (24, 168):
                    response = client.post(f"{server.url}/v1/outcomes", json={
                        "score_id": score_id, "post_id": f"P{i}", "posted_at": POSTED, "age_hours": age,
                        "likes": i})
                    if response.status_code != 201:
                        failures.append(response.text)

    threads = [threading.Thread(target=post, args=(list(enumerate(ids))[k::8],)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    store = OutcomeStore(db)
    assert store.count("outcomes") == 96 and store.count("published") == 48
    frame = store.outcomes_frame()
    assert sorted(frame.loc[frame["age_hours"] == 168, "likes"].tolist()) == list(range(48))


def test_an_outcome_store_that_cannot_be_opened_stops_the_server_with_what_to_do(tmp_path: Path) -> None:
    from engage.outcomes import OutcomeError
    from engage.serving.server import run

    (tmp_path / "not-a-db").write_bytes(b"this is not a SQLite file" * 100)
    with pytest.raises(OutcomeError, match="cannot be opened.*--outcomes off"):
        create_app(ServeOptions(api_key=None, admin_token=None,
                                outcomes=f"sqlite:///{tmp_path / 'not-a-db'}"))
    assert run(ServeOptions(outcomes="nosuchdialect://x", port=0)) == 2


def test_serve_cli_defaults_the_store_and_can_turn_it_off(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from serve import parse_args

    monkeypatch.chdir(tmp_path)
    assert parse_args(["--model", "models/engage"]).outcomes == f"sqlite:///{tmp_path / 'outcomes.db'}"
    tracking = f"sqlite:///{tmp_path}/t/mlflow.db"
    assert parse_args(["--tracking-uri", tracking]).outcomes == f"sqlite:///{tmp_path}/t/outcomes.db"
    assert parse_args(["--outcomes", "off"]).outcomes is None
    options = parse_args(["--outcomes", "postgresql+psycopg://u@db/engage", "--outcomes-photos"])
    assert options.outcomes == "postgresql+psycopg://u@db/engage" and options.outcomes_photos is True


def test_a_key_scoped_to_one_account_records_and_reads_only_its_own_outcomes(db: str, tmp_path: Path) -> None:
    admin, anna = "admin-key-0123456789abcdef", "anna-key-0123456789abcdef"
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"admin: [{admin}]\nkeys:\n  {anna}: [anna.bakes]\n", encoding="utf-8")
    app = create_app(ServeOptions(api_key=None, admin_token=None, key_file=str(keys), outcomes=db),
                     loader=RecordingScorer)
    with ThreadServer(app) as server:
        for _ in range(200):
            if httpx.get(f"{server.url}/ready").status_code == 200:
                break
        def post(key: str, path: str, body: dict) -> httpx.Response:
            return httpx.post(f"{server.url}{path}", json=body, headers={"X-API-Key": key})

        bens = post(admin, "/v1/score", {"account": "ben.runs", "caption": "x"}).json()["score_id"]
        annas = post(anna, "/v1/score", {"account": "anna.bakes", "caption": "y"}).json()["score_id"]
        outcome = {"posted_at": POSTED, "age_hours": 24, "likes": 3}
        refused = post(anna, "/v1/outcomes", {**outcome, "score_id": bens, "post_id": "B1"})
        assert refused.status_code == 403 and refused.json()["error"]["field"] == "account"
        assert post(anna, "/v1/outcomes", {**outcome, "score_id": annas, "post_id": "A1"}).status_code == 201
        assert post(admin, "/v1/outcomes", {**outcome, "score_id": bens, "post_id": "B1"}).status_code == 201
        # found by the post
        later = post(anna, "/v1/outcomes", {**outcome, "post_id": "B1", "age_hours": 168})
        assert later.status_code == 403

        def get(key: str, **params: str) -> httpx.Response:
            return httpx.get(f"{server.url}/v1/accuracy", params=params, headers={"X-API-Key": key})

        assert get(anna, account="anna.bakes").json()["published"] == 1
        assert get(anna, account="ben.runs").status_code == 403
        assert get(anna).status_code == 403  # every account at once needs an admin key
        assert get(admin).json()["published"] == 2
        plot = httpx.get(f"{server.url}/v1/accuracy/plot", params={"account": "ben.runs"},
                         headers={"X-API-Key": anna})
        assert plot.status_code == 403
