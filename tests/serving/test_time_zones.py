"""The best hour in the account's time zone: per request, per account on the server, UTC by default."""

from __future__ import annotations

import httpx
import pytest
from serving_helpers import RecordingScorer, ThreadServer

from engage.serving.app import create_app
from engage.serving.options import ServeOptions

DRAFTS = [{"caption": "one"}, {"caption": "two #a"}]


def _serve(scorer: RecordingScorer, **options: object) -> ThreadServer:
    return ThreadServer(create_app(ServeOptions(api_key=None, admin_token=None, **options),
                                   loader=lambda: scorer))


def _ready(url: str) -> None:
    for _ in range(200):
        if httpx.get(f"{url}/ready").status_code == 200:
            return
    raise AssertionError("not ready")


def test_best_hour_names_the_zone_of_the_request_the_account_or_the_server() -> None:
    with _serve(RecordingScorer(), time_zone="America/New_York",
                account_time_zones={"anna.bakes": "Europe/Berlin"}) as server:
        _ready(server.url)
        ask = lambda **extra: httpx.post(f"{server.url}/v1/compare", json={  # noqa: E731
            "drafts": DRAFTS, "best_hour": True, **extra}).json()["best_hour"]
        assert ask(account="anna.bakes") == {"posted_at": "2030-01-01T18:00:00+01:00",
                                             "time_zone": "Europe/Berlin",
                                             "goal": "likes", "expected": 123.0, "expected_likes": 123.0}
        assert ask(account="ben.runs")["time_zone"] == "America/New_York"
        assert ask(account="ben.runs")["posted_at"] == "2030-01-01T18:00:00-05:00"
        assert ask(account="anna.bakes", time_zone="Asia/Kolkata")["posted_at"] == "2030-01-01T18:00:00+05:30"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/berlin", "../../etc/passwd", "", "x" * 65])
def test_an_unknown_time_zone_is_a_422_naming_the_field(zone: str) -> None:
    with _serve(RecordingScorer()) as server:
        _ready(server.url)
        response = httpx.post(f"{server.url}/v1/compare", json={
            "account": "anna.bakes", "drafts": DRAFTS, "best_hour": True, "time_zone": zone})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "time_zone"


def test_serve_cli_reads_time_zones_and_refuses_unknown_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from serve import parse_args

    options = parse_args(["--time-zone", "Asia/Tokyo", "--account-time-zone", "anna.bakes=Europe/Berlin",
                          "--account-time-zone", "ben=America/Chicago"])
    assert options.time_zone == "Asia/Tokyo"
    assert options.account_time_zones == {"anna.bakes": "Europe/Berlin", "ben": "America/Chicago"}
    assert options.time_zone_of("ben") == "America/Chicago" and options.time_zone_of("other") == "Asia/Tokyo"
    assert parse_args([]).time_zone == "UTC"
    with pytest.raises(SystemExit):
        parse_args(["--account-time-zone", "anna=Nowhere/Town"])
    assert "'Nowhere/Town' is not an IANA time zone name" in capsys.readouterr().err
