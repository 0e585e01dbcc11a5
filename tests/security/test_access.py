"""Closed unless opened on purpose (issue 22): no key beyond loopback refuses to start, keys are scoped to
accounts, /ready hides the shared cache's statistics from callers without an admin key, and a loopback server
refuses a Host it does not answer to (DNS rebinding). Before issue 22 `serve.py --host 0.0.0.0` started open,
every key saw every account, /ready showed the cache's hits to anyone, and any Host was answered."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from serving_helpers import RecordingScorer, ThreadServer, free_port, photo

from engage.errors import ConfigError
from engage.serving.app import create_app
from engage.serving.options import ServeOptions

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin-key-0123456789abcdef"
ANNA = "anna-key-0123456789abcdef"
AGENCY = "agency-key-0123456789abcdef"  # written into the key file as its SHA-256 only
PHOTO = base64.b64encode(photo()).decode()


def serve_py(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("ENGAGE_API_KEY", "ENGAGE_KEY_FILE")}
    env["PYTHONPATH"] = str(ROOT)
    # No outcome store: its default for a bundle path is the working directory, here the checkout.
    return subprocess.run([sys.executable, str(ROOT / "serve.py"), "--port", str(free_port()), "--outcomes",
                           "off",
                           *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def test_listening_beyond_loopback_without_a_key_refuses_to_start_and_says_what_to_do(tmp_path: Path) -> None:
    run = serve_py("--host", "0.0.0.0", "--model", str(tmp_path / "no-model"))
    assert run.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in run.stderr
    assert "ENGAGE_API_KEY or --key-file" in run.stderr and "--insecure-no-auth" in run.stderr
    assert "cannot serve model" not in run.stderr  # refused before any model is loaded


def test_insecure_no_auth_starts_open_and_says_so_in_the_log(tmp_path: Path) -> None:
    run = serve_py("--host", "0.0.0.0", "--insecure-no-auth", "--model", str(tmp_path / "no-model"))
    assert "refusing" not in run.stderr
    assert "--insecure-no-auth: serving on 0.0.0.0 WITHOUT an API key" in run.stderr
    assert "cannot serve model" in run.stderr  # it went on to load the (missing) model


def test_a_key_file_lets_a_server_listen_beyond_loopback(tmp_path: Path) -> None:
    from engage.serving.access import KeyRing, check_exposure

    keys = tmp_path / "keys.yaml"
    keys.write_text(f"admin: [{ADMIN}]\n")
    check_exposure("0.0.0.0", KeyRing.load(None, keys), insecure_no_auth=False)  # no error
    with pytest.raises(ConfigError, match="refusing to listen on ::"):
        check_exposure("::", None, insecure_no_auth=False)
    check_exposure("127.0.0.1", None, insecure_no_auth=False)  # loopback stays open for the newcomer's path


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory):
    keys = tmp_path_factory.mktemp("keys") / "keys.yaml"
    keys.write_text(f"admin:\n  - {ADMIN}\nkeys:\n  {ANNA}: [Anna.Bakes]\n"
                    f"  \"sha256:{hashlib.sha256(AGENCY.encode()).hexdigest()}\": [anna.bakes, ben.runs]\n")
    app = create_app(ServeOptions(api_key=None, admin_token=None, key_file=str(keys)), loader=RecordingScorer)
    with ThreadServer(app) as running:
        for _ in range(500):
            if httpx.get(f"{running.url}/ready").status_code == 200:
                break
            time.sleep(0.02)
        yield running


def get(server: ThreadServer, path: str, key: str | None, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params=params, headers={"X-API-Key": key} if key else {})


def post(server: ThreadServer, path: str, key: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", headers={"X-API-Key": key}, **body)


def test_a_scoped_key_lists_only_its_accounts(scoped: ThreadServer) -> None:
    assert get(scoped, "/v1/accounts", ANNA).json() == {"accounts": ["anna.bakes"]}
    assert get(scoped, "/v1/accounts", AGENCY).json() == {"accounts": ["anna.bakes", "ben.runs"]}
    assert get(scoped, "/v1/accounts", ADMIN).json() == {"accounts": ["anna.bakes", "ben.runs"]}


@pytest.mark.parametrize("request_", [
    ("feed", lambda s, k: get(s, "/v1/feed", k, account="ben.runs")),
    ("score JSON", lambda s, k: post(s, "/v1/score", k,
                                     json={"account": "ben.runs", "caption": "hi", "image": PHOTO})),
    ("score form", lambda s, k: post(s, "/v1/score", k, data={"account": "ben.runs", "caption": "hi"},
                                     files={"image": ("p.jpg", base64.b64decode(PHOTO), "image/jpeg")})),
    ("compare", lambda s, k: post(s, "/v1/compare", k,
                                  json={"account": "ben.runs", "drafts": [{"caption": "a"},
                                      {"caption": "b"}]})),
    ("an account the model does not know", lambda s, k: post(s, "/v1/score", k,
                                                             json={"account": "zed", "caption": "x"})),
], ids=lambda r: r[0])
def test_a_scoped_key_gets_403_for_another_accounts_feed_scores_and_comparisons(
    scoped: ThreadServer, request_) -> None:
    _, send = request_
    refused = send(scoped, ANNA)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["field"] == "account" and "ben.runs" not in refused.text
    if request_[0] != "an account the model does not know":
        assert send(scoped, AGENCY).status_code == 200  # the key scoped to both accounts may
        assert send(scoped, ADMIN).status_code == 200


def test_a_scoped_key_scores_and_sees_its_own_account(scoped: ThreadServer) -> None:
    assert post(scoped, "/v1/score", ANNA, json={"account": "anna.bakes", "caption": "hi"}).status_code == 200
    assert len(get(scoped, "/v1/feed", ANNA, account="anna.bakes").json()["photos"]) == 2


def test_keys_in_the_file_are_still_keys_a_wrong_one_gets_401(scoped: ThreadServer) -> None:
    assert get(scoped, "/v1/accounts", None).status_code == 401
    assert get(scoped, "/v1/accounts", ANNA[:-1]).status_code == 401
    sha_entry = "sha256:" + hashlib.sha256(AGENCY.encode()).hexdigest()
    assert get(scoped, "/v1/accounts", sha_entry).status_code == 401  # the digest itself is not a key


def test_ready_shows_cache_statistics_only_to_an_admin_key(scoped: ThreadServer) -> None:
    for key in (None, ANNA, "wrong-key-0123456789"):
        answer = get(scoped, "/ready", key).json()
        assert answer["status"] == "ready" and answer["vector_cache"] is None and answer["batching"] is None
    assert get(scoped, "/ready", ADMIN).json()["vector_cache"]["hits"] == 0


def test_ready_of_a_keyless_server_open_beyond_loopback_shows_no_cache_statistics() -> None:
    app = create_app(ServeOptions(api_key=None, admin_token=None, key_file=None, host="0.0.0.0",
                                  insecure_no_auth=True),
                     loader=RecordingScorer)
    with ThreadServer(app) as running:
        for _ in range(500):
            if httpx.get(f"{running.url}/ready").status_code == 200:
                break
            time.sleep(0.02)
        assert httpx.get(f"{running.url}/ready").json()["vector_cache"] is None


@pytest.mark.parametrize(("text", "message"), [
    ("keys:\n  short: [anna.bakes]\n", "too short to be a secret"),
    (f"keys:\n  {ANNA}: []\n", "give the list of accounts"),
    (f"admin: {ADMIN}\n", "'admin' must be a list"),
    ("users: []\n", "must be a mapping with 'admin'"),
    ("keys:\n  \"sha256:abc\": [a]\n", "64-digit hex"),
    (f"admin: [{ADMIN}]\nkeys:\n  {ADMIN}: [a]\n", "also an admin key"),
])
def test_a_bad_key_file_stops_the_server_naming_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str) -> None:
    from engage.serving.access import KeyRing

    (tmp_path / "keys.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        KeyRing.load(None, tmp_path / "keys.yaml")


@pytest.fixture(scope="module")
def local():
    app = create_app(ServeOptions(api_key=None, admin_token=None, key_file=None,
                                  allowed_hosts=("studio.lan",)),
                     loader=RecordingScorer)
    with ThreadServer(app) as running:
        yield running


@pytest.mark.parametrize("host",
                         ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil"])
def test_a_loopback_server_refuses_a_host_it_does_not_answer_to(local: ThreadServer, host: str) -> None:
    for path in ("/v1/accounts", "/ready", "/"):
        refused = httpx.get(f"{local.url}{path}", headers={"Host": host})
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "Host"


@pytest.mark.parametrize("host",
                         ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}", "studio.lan"])
def test_a_loopback_server_answers_loopback_names_and_allowed_hosts(local: ThreadServer, host: str) -> None:
    answer = httpx.get(f"{local.url}/health", headers={"Host": host.format(port=local.port)})
    assert answer.status_code == 200
