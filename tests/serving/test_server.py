"""End to end: `python serve.py` on the smoke model bundle, spoken to over HTTP like a user's client.

The `trained` fixture (tests/conftest.py) trains the smoke demo model once per session; these tests only
start servers on its exported bundle (or copies of it) and assert values in the answers.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from serving_helpers import ROOT, SECRET, ServeProcess, photo, png_bomb

from engage.model.targets import RISK_LABEL_FELT_FAKE

pytestmark = pytest.mark.slow  # needs the session's trained smoke model (minutes, once)

WHEN = "2024-06-01T18:00:00Z"  # for history posts
PHOTO = photo(320)
PHOTO_B64 = base64.b64encode(PHOTO).decode()
HASHTAGS_25 = " ".join(f"#tag{i}" for i in range(25))


@pytest.fixture(scope="module")
def bundle(trained) -> Path:
    return Path(trained[1])


def draft_time(bundle: Path) -> str:
    """18:00 UTC the day after the bundle's last post: the accounts are known then, and two requests for
    one draft get the same features (the default, now, moves)."""
    last = pd.read_parquet(bundle / "context.parquet", columns=["posted_at"])["posted_at"].max()
    return (last.normalize() + pd.Timedelta(days=1, hours=18)).isoformat()


@pytest.fixture(scope="module")
def served(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    with ServeProcess(bundle, tmp_path_factory.mktemp("serve") / "serve.log") as server:
        server.when = draft_time(bundle)  # type: ignore[attr-defined]
        yield server


@pytest.fixture(scope="module")
def account(served: ServeProcess) -> str:
    return httpx.get(f"{served.url}/v1/accounts").json()["accounts"][0]


def score(server: ServeProcess, timeout: float = 120, **fields: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/score", json={"posted_at": server.when, **fields}, timeout=timeout)


def copy_bundle(bundle: Path, where: Path) -> Path:
    shutil.copytree(bundle, where)
    return where


def save_as_version(bundle: Path, version: str) -> None:
    """Rewrite `bundle` in place (atomically, as training does) with a new version in its info."""
    from engage.model.bundle import EngageModel

    model = EngageModel.load(bundle)
    model.info["version"] = version
    model.save(bundle)


# --------------------------------------------------------------------------------------------- answers


def test_ready_reports_the_models_name_version_and_embedder(served: ServeProcess, trained,
                                                            bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    ready = dict(served.ready)
    batching, cache = ready.pop("batching"), ready.pop("vector_cache")
    assert ready == {"status": "ready", "model": "engage", "version": f"engage/{trained[0].model_version}",
                     "embedder": manifest["embedder"], "error": None}
    # serve.py's defaults, and the warm-up draft went through the batcher
    assert batching["max_batch_size"] == 16 and batching["max_wait_ms"] == 5 and batching["items"] >= 1
    assert cache["max_items"] == 8192 and cache["items"] >= 2
    assert httpx.get(f"{served.url}/health").json() == {"status": "ok"}


def test_score_answers_with_sane_ranges_risk_flags_and_factors(served: ServeProcess, account: str) -> None:
    response = score(served, account=account, caption="Golden hour on the balcony", image=PHOTO_B64,
                     followers=5000)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == served.ready["version"] and body["embedder"] == served.ready["embedder"]
    for target in ("likes", "comments"):
        assert 0 <= body[target]["low"] <= body[target]["expected"] <= body[target]["high"]
    assert 0 <= body["authenticity_risk"] <= 1
    assert body["risk_label"] == RISK_LABEL_FELT_FAKE  # the smoke demo carries the simulator's felt_fake
    assert all(set(flag) == {"code", "message"} and flag["message"] for flag in body["flags"])
    assert 1 <= len(body["factors"]) <= 6
    assert all(isinstance(f["feature"], str) and isinstance(f["contribution"],
                                                            float) for f in body["factors"])
    sizes = [abs(f["contribution"]) for f in body["factors"]]
    assert sizes == sorted(sizes, reverse=True)


def test_25_hashtags_raise_the_flag_and_lower_expected_likes(served: ServeProcess, account: str) -> None:
    caption = "Slow Sunday, fresh bread and coffee"
    plain = score(served, account=account, caption=caption, image=PHOTO_B64).json()
    stuffed = score(served, account=account, caption=f"{caption} {HASHTAGS_25}", image=PHOTO_B64).json()
    assert "too_many_hashtags" not in [f["code"] for f in plain["flags"]]
    assert "too_many_hashtags" in [f["code"] for f in stuffed["flags"]]
    assert stuffed["likes"]["expected"] < plain["likes"]["expected"]


def test_disclosure_tags_raise_the_authenticity_risk_of_a_sponsored_draft(
    served: ServeProcess, account: str) -> None:
    caption = "Loving this new serum from @glowco, my skin has never felt better"
    without = score(served, account=account, caption=caption, image=PHOTO_B64, sponsored=True).json()
    tagged = score(served, account=account, caption=f"{caption} #ad #paid", image=PHOTO_B64,
                   sponsored=True).json()
    assert tagged["authenticity_risk"] > without["authenticity_risk"]
    assert "disclosure_tags" in [f["code"] for f in tagged["flags"]]


def test_multipart_upload_scores_exactly_like_json_base64(served: ServeProcess, account: str) -> None:
    fields = {"account": account, "caption": "Crumb shot #sourdough", "posted_at": served.when,
              "followers": "4200",
              "sponsored": "false"}
    as_form = httpx.post(f"{served.url}/v1/score", data=fields,
                         files={"image": ("draft.jpg", PHOTO, "image/jpeg")},
                         timeout=120)
    as_json = score(served, **{**fields, "followers": 4200, "sponsored": False, "image": PHOTO_B64})
    assert as_form.status_code == 200, as_form.text
    form_body, json_body = as_form.json(), as_json.json()
    # Each scoring is recorded apart in the outcome store: its own score_id, the rest identical.
    assert form_body.pop("score_id") != json_body.pop("score_id")
    assert form_body == json_body


def test_unknown_account_is_scored_with_priors_and_flagged_unless_history_is_sent(
    served: ServeProcess) -> None:
    alone = score(served, account="never.seen.before", caption="Hello world", image=PHOTO_B64)
    assert alone.status_code == 200
    assert "unknown_account" in [f["code"] for f in alone.json()["flags"]]
    start = datetime(2024, 5, 1, 18, tzinfo=UTC)
    history = [{"caption": f"Day {i} in the studio", "posted_at": (start + timedelta(days=2 * i)).isoformat(),
                "likes": 300 + 10 * i, "comments": 12,
                "image": base64.b64encode(photo(96, (40, 90 + i, 160))).decode()}
               for i in range(6)]
    with_history = score(served, account="never.seen.before", caption="Hello world", image=PHOTO_B64,
                         history=history)
    assert with_history.status_code == 200, with_history.text
    assert "unknown_account" not in [f["code"] for f in with_history.json()["flags"]]
    assert with_history.json()["likes"]["expected"] != alone.json()["likes"]["expected"]


def test_compare_ranks_drafts_by_expected_likes_and_finds_the_best_hour(
    served: ServeProcess, account: str) -> None:
    drafts = [{"caption": f"Market haul {HASHTAGS_25}", "image": PHOTO_B64, "posted_at": served.when},
              {"caption": "Market haul, peaches are back", "image": PHOTO_B64, "posted_at": served.when}]
    response = httpx.post(f"{served.url}/v1/compare",
                          json={"account": account, "drafts": drafts, "best_hour": True},
                          timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    singles = [score(served, account=account, **d).json() for d in drafts]
    expected = [s["likes"]["expected"] for s in singles]
    assert [d["index"] for d in body["drafts"]] == sorted(range(2), key=lambda i: -expected[i])
    assert body["drafts"][0]["index"] == 1  # the hashtag-stuffed draft ranks last on the demo model
    assert len(body["compare_id"]) == 32
    for entry in body["drafts"]:
        # the same answer as scored alone, but recorded apart in the outcome store (its own score_id)
        assert entry["score"].pop("score_id") != singles[entry["index"]].pop("score_id")
        assert entry["score"] == singles[entry["index"]]
        assert entry["likes_vs_first"] == pytest.approx(expected[entry["index"]] - expected[0], abs=0.01)
        assert entry["likes_vs_best"] == pytest.approx(expected[entry["index"]] - max(expected), abs=0.01)
    best = datetime.fromisoformat(body["best_hour"]["posted_at"])
    now = datetime.now(UTC)
    assert now < best <= now + timedelta(days=7, hours=1) and best.minute == 0
    assert body["best_hour"]["expected_likes"] > 0 and body["best_hour"]["time_zone"] == "UTC"


# --------------------------------------------------------------------------------------------- errors

BAD_REQUESTS = {
    "image not base64": (dict(image="%%% not base64 %%%"), 400, "image"),
    "image not a photo": (dict(image=base64.b64encode(b"%PDF-1.4 " + SECRET.encode()).decode()), 400,
                          "image"),
    "truncated photo": (dict(image=base64.b64encode(PHOTO[: len(PHOTO) // 3]).decode()), 400, "image"),
    "decompression bomb": (dict(image=base64.b64encode(png_bomb()).decode()), 400, "image"),
    "caption over 2,200 characters": (dict(caption=SECRET * 100), 422, "caption"),
    "history over 500 posts": (dict(history=[{"caption": SECRET, "posted_at": WHEN, "likes": 1}] * 501), 422,
                               "history"),
    "followers not a number": (dict(followers="lots"), 422, "followers"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_draft_is_refused_naming_the_field_and_the_server_keeps_serving(
    served: ServeProcess, account: str, case: str
) -> None:
    fields, status, field = BAD_REQUESTS[case]
    response = score(served, **{"account": account, "caption": SECRET, **fields})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert field in [e["field"] for e in (error if isinstance(error, list) else [error])]
    assert SECRET not in response.text
    assert score(served, account=account, caption="A valid draft", image=PHOTO_B64).status_code == 200
    assert SECRET not in served.log()


# --------------------------------------------------------------------------------------------- operations


@pytest.fixture(scope="module")
def guarded(bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """A server on a copy of the bundle with tiny limits, an API key and an admin token."""
    work = tmp_path_factory.mktemp("guarded")
    copy = copy_bundle(bundle, work / "engage")
    server = ServeProcess(copy, work / "serve.log", "--max-concurrent", "1", "--max-queue", "0",
                          "--retry-after", "2",
                          env={"ENGAGE_API_KEY": "key-123", "ENGAGE_ADMIN_TOKEN": "admin-456"})
    with server:
        server.bundle = copy  # type: ignore[attr-defined]
        server.when = draft_time(bundle)  # type: ignore[attr-defined]
        yield server


KEY = {"X-API-Key": "key-123"}
ADMIN = {"Authorization": "Bearer admin-456"}


def test_api_key_is_required_on_v1_when_set(guarded: ServeProcess) -> None:
    draft = {"account": "someone", "caption": "hi", "posted_at": WHEN}
    assert httpx.post(f"{guarded.url}/v1/score", json=draft, timeout=60).status_code == 401
    assert httpx.post(f"{guarded.url}/v1/score", json=draft, headers={"X-API-Key": "nope"},
                      timeout=60).status_code == 401
    assert httpx.post(f"{guarded.url}/v1/score", json=draft, headers=KEY, timeout=60).status_code == 200
    assert httpx.get(f"{guarded.url}/ready").status_code == 200


def test_overload_beyond_the_limits_gets_503_with_retry_after(guarded: ServeProcess) -> None:
    draft = {"account": "someone", "caption": "hi", "posted_at": WHEN, "image": PHOTO_B64}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: httpx.post(f"{guarded.url}/v1/score", json=draft, headers=KEY,
                                                     timeout=120),
                                range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses[-1] == 503, statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["Retry-After"] == "2" and "busy" in busy.json()["error"]["message"]
    assert httpx.post(f"{guarded.url}/v1/score", json=draft, headers=KEY, timeout=120).status_code == 200


def test_reload_swaps_in_a_new_bundle_and_refuses_an_incomplete_one(guarded: ServeProcess) -> None:
    bundle: Path = guarded.bundle  # type: ignore[attr-defined]
    draft = {"account": "someone", "caption": "hi", "posted_at": WHEN}
    assert httpx.post(f"{guarded.url}/admin/reload",
                      headers={"Authorization": "Bearer wrong"}).status_code == 403

    save_as_version(bundle, "engage/reloaded")
    reloaded = httpx.post(f"{guarded.url}/admin/reload", headers=ADMIN, timeout=300)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["version"] == "engage/reloaded"
    assert httpx.get(f"{guarded.url}/ready").json()["version"] == "engage/reloaded"
    assert httpx.post(f"{guarded.url}/v1/score", json=draft, headers=KEY,
                      timeout=60).json()["model_version"] == "engage/reloaded"

    (bundle / "context.parquet").unlink()
    refused = httpx.post(f"{guarded.url}/admin/reload", headers=ADMIN, timeout=300)
    assert refused.status_code == 409
    assert "context.parquet is missing" in refused.json()["error"]["message"]
    assert httpx.get(f"{guarded.url}/ready").json()["version"] == "engage/reloaded"
    answer = httpx.post(f"{guarded.url}/v1/score", json=draft, headers=KEY, timeout=60)
    assert answer.status_code == 200 and answer.json()["model_version"] == "engage/reloaded"


def test_sighup_reloads_the_model(guarded: ServeProcess, bundle: Path) -> None:
    shutil.rmtree(guarded.bundle)  # type: ignore[attr-defined]
    copy_bundle(bundle, guarded.bundle)  # type: ignore[attr-defined]
    save_as_version(guarded.bundle, "engage/after-sighup")  # type: ignore[attr-defined]
    guarded.signal(signal.SIGHUP)
    deadline = time.monotonic() + 120
    while httpx.get(f"{guarded.url}/ready").json()["version"] != "engage/after-sighup":
        assert time.monotonic() < deadline, "SIGHUP did not reload the model"
        time.sleep(0.5)
    assert httpx.get(f"{guarded.url}/health").status_code == 200


# --------------------------------------------------------------------------------------------- start-up


def serve_until_exit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # --outcomes off: a bundle's default outcome store is the working directory, here the checkout.
    return subprocess.run([sys.executable, str(ROOT / "serve.py"), "--port", "0", "--outcomes", "off", *args],
                          cwd=ROOT,
                          capture_output=True,
        text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0"})


def test_incomplete_bundle_refuses_to_start_with_a_clear_message(bundle: Path, tmp_path: Path) -> None:
    copy = copy_bundle(bundle, tmp_path / "engage")
    (copy / "state.pkl").unlink()
    done = serve_until_exit("--model", str(copy))
    assert done.returncode == 2
    assert f"error: cannot serve model {copy}: {copy} is incomplete: state.pkl is missing" in done.stderr


def test_model_trained_with_another_embedder_refuses_to_start(bundle: Path, tmp_path: Path) -> None:
    from engage.model.bundle import EngageModel

    model = EngageModel.load(bundle)
    model.pipeline.image_embedder_id_ = "open_clip:ViT-B-32:laion2b_s34b_b79k"
    model.save(tmp_path / "engage")
    done = serve_until_exit("--model", str(tmp_path / "engage"))
    assert done.returncode == 2
    assert "trained with image embedder 'open_clip:ViT-B-32:laion2b_s34b_b79k'" in done.stderr
