"""Model lifecycle under traffic: reloading the champion swaps it atomically while clients keep scoring, and
a registry version whose artefacts are incomplete or damaged is refused, with a clear message, while the
old model keeps serving.

tests/serving already proves a reload between requests, in-flight requests finishing on the old model (with
an in-test scorer), SIGHUP, and refusing an incomplete *bundle directory*. This module adds reloads under
concurrent load on the real model, and the MLflow registry path (`models:/engage@champion`).
"""

from __future__ import annotations

import base64
import shutil
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from serving_helpers import ServeProcess, photo

pytestmark = pytest.mark.slow  # needs the session's trained smoke model

WHEN = "2025-03-02T18:00:00Z"
PHOTO = photo(320)
PHOTO_B64 = base64.b64encode(PHOTO).decode()
ADMIN = {"Authorization": "Bearer lifecycle-admin"}
ENV = {"ENGAGE_ADMIN_TOKEN": "lifecycle-admin"}


def bundle_with_version(bundle: Path, where: Path, version: str) -> Path:
    """A copy of `bundle` at `where` (written atomically by EngageModel.save) that reports `version`."""
    from engage.model.bundle import EngageModel

    model = EngageModel.load(bundle)
    model.info["version"] = version
    return model.save(where)


class Clients:
    """`n` threads, each scoring drafts one after another (JSON with a photo, multipart, JSON without a
    photo, in turn) until stopped; every answer's status and model version is recorded in order."""

    def __init__(self, url: str, account: str, n: int = 4):
        self.url, self.account = url, account
        self.stop = threading.Event()
        self.answers: list[list[tuple[int, str | None]]] = [[] for _ in range(n)]
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(n)]

    def _request(self, client: httpx.Client, k: int) -> httpx.Response:
        fields = {"account": self.account, "caption": f"Reload traffic {k} #bread", "posted_at": WHEN}
        if k % 3 == 0:
            return client.post("/v1/score", json={**fields, "image": PHOTO_B64})
        if k % 3 == 1:
            return client.post("/v1/score", data=fields, files={"image": ("draft.jpg", PHOTO, "image/jpeg")})
        return client.post("/v1/score", json=fields)

    def _loop(self, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=120) as client:
            k = i
            while not self.stop.is_set():
                try:
                    response = self._request(client, k)
                except httpx.HTTPError as e:
                    self.failures.append(f"client {i}: {type(e).__name__}: {e}")
                    continue
                version = response.json().get("model_version") if response.status_code == 200 else None
                if response.status_code != 200:
                    self.failures.append(f"client {i}: {response.status_code} {response.text[:200]}")
                self.answers[i].append((response.status_code, version))
                k += 1

    def __enter__(self) -> Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=180)


def wait_for_version(url: str, version: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/ready", timeout=10).json().get("version") != version:
        assert time.monotonic() < deadline, f"the server did not switch to {version}"
        time.sleep(0.3)


def test_reloads_under_concurrent_load_swap_atomically_and_no_request_fails(
    bundle: Path, tmp_path: Path) -> None:
    served_bundle = bundle_with_version(bundle, tmp_path / "engage", "engage/lifecycle-0")
    with ServeProcess(served_bundle, tmp_path / "serve.log", env=ENV) as server:
        account = httpx.get(f"{server.url}/v1/accounts").json()["accounts"][0]
        order = ["engage/lifecycle-0"]
        with Clients(server.url, account) as clients:
            for k in (1, 2, 3):
                while sum(len(a) for a in clients.answers) < 4 * k:  # traffic on every version
                    time.sleep(0.1)
                bundle_with_version(bundle, served_bundle, f"engage/lifecycle-{k}")
                reloaded = httpx.post(f"{server.url}/admin/reload", headers=ADMIN, timeout=300)
                assert reloaded.status_code == 200, reloaded.text
                assert reloaded.json()["previous_version"] == order[-1]
                assert reloaded.json()["version"] == f"engage/lifecycle-{k}"
                order.append(f"engage/lifecycle-{k}")
            bundle_with_version(bundle, served_bundle, "engage/lifecycle-hup")
            server.signal(signal.SIGHUP)
            wait_for_version(server.url, "engage/lifecycle-hup")
            order.append("engage/lifecycle-hup")
            seen = sum(len(a) for a in clients.answers)
            while sum(len(a) for a in clients.answers) < seen + 4:
                time.sleep(0.1)
        assert httpx.get(f"{server.url}/health").status_code == 200
        log = server.log()

    assert clients.failures == [], clients.failures[:5]
    answers = [a for per_client in clients.answers for a in per_client]
    assert len(answers) >= 20
    versions = Counter(version for _, version in answers)
    assert set(versions) <= set(order), versions
    assert versions["engage/lifecycle-0"] > 0 and versions["engage/lifecycle-hup"] > 0
    # Each client's requests are sequential, so once it has seen a version it never sees an older one again.
    for per_client in clients.answers:
        ranks = [order.index(version) for _, version in per_client]
        assert ranks == sorted(ranks), ranks
    assert "Traceback" not in log


# --------------------------------------------------------------------------------------------- registry


class Registry:
    """A throw-away MLflow store whose versions of `engage` are logged exactly as training logs them."""

    def __init__(self, root: Path):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.root = root
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        self.experiment = self.client.create_experiment("engage", artifact_location=str(root / "artifacts"))
        self._mlflow = mlflow

    def register(self, bundle_dir: Path) -> str:
        """Log `bundle_dir` as the pyfunc model, register it
        as the next version of engage, make it champion."""
        from engage.scoring.pyfunc import EngagePyfunc, pip_requirements

        # MLflow stores an artifact directory under its own name, and EngageModel.from_uri reads
        # artifacts/bundle (training logs a directory named bundle too).
        assert bundle_dir.name == "bundle", bundle_dir

        mlflow = self._mlflow
        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run(experiment_id=self.experiment):
            logged = mlflow.pyfunc.log_model(name="model", python_model=EngagePyfunc(),
                artifacts={"bundle": str(bundle_dir)}, pip_requirements=pip_requirements())
        version = mlflow.register_model(logged.model_uri, "engage").version
        self.client.set_registered_model_alias("engage", "champion", version)
        return str(version)

    def stored_bundle(self, version: str) -> Path:
        """Where the registry keeps the bundle artefact of `version` (to damage it in place)."""
        location = Path(self.client.get_model_version_download_uri("engage", version))
        return location / "artifacts" / "bundle"


def damage_remove_file(bundle: Path) -> str:
    (bundle / "context_vectors.npz").unlink()
    return "is incomplete: context_vectors.npz is missing"


def damage_change_file(bundle: Path) -> str:
    with open(bundle / "state.pkl", "ab") as handle:
        handle.write(b"\0")
    return "is corrupt: state.pkl does not match its checksum in manifest.json"


def damage_remove_manifest(bundle: Path) -> str:
    (bundle / "manifest.json").unlink()
    return "is not a complete engage bundle (no manifest.json)"


def damage_remove_artefacts(bundle: Path) -> str:
    shutil.rmtree(bundle)
    return "cannot load model 'models:/engage@champion'"


DAMAGE = {"a file removed": damage_remove_file, "a file changed": damage_change_file,
          "the manifest removed": damage_remove_manifest, "every artefact removed": damage_remove_artefacts}


@pytest.fixture(scope="module")
def registry(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    return Registry(root)


@pytest.fixture(scope="module")
def champion_server(registry: Registry, bundle: Path, tmp_path_factory: pytest.TempPathFactory):
    """serve.py on models:/engage@champion, the champion being a complete version; a registered model
    reports its registry version (`engage/<n>`), kept as `server.good_version`."""
    work = tmp_path_factory.mktemp("champion")
    good = registry.register(bundle_with_version(bundle, work / "good" / "bundle", "engage/registry-good"))
    with ServeProcess("models:/engage@champion", work / "serve.log", "--tracking-uri", registry.uri,
                      env=ENV) as server:
        server.good_version = f"engage/{good}"
        yield server


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_registry_version_with_damaged_artefacts_is_refused_at_reload_and_the_old_model_keeps_serving(
    champion_server: ServeProcess, registry: Registry, bundle: Path, tmp_path: Path, damage: str
) -> None:
    version = registry.register(bundle_with_version(bundle, tmp_path / "bundle", f"engage/damaged-{damage}"))
    message = DAMAGE[damage](registry.stored_bundle(version))

    refused = httpx.post(f"{champion_server.url}/admin/reload", headers=ADMIN, timeout=300)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["field"] == "model"
    assert message in error["message"] and "current one keeps serving" in error["message"]
    assert httpx.get(f"{champion_server.url}/ready").json()["version"] == champion_server.good_version
    account = httpx.get(f"{champion_server.url}/v1/accounts").json()["accounts"][0]
    answer = httpx.post(f"{champion_server.url}/v1/score", json={"account": account, "caption": "still here",
                                                                 "posted_at": WHEN}, timeout=120)
    assert answer.status_code == 200 and answer.json()["model_version"] == champion_server.good_version


def test_a_complete_new_champion_is_then_reloaded_from_the_registry(
    champion_server: ServeProcess, registry: Registry, bundle: Path, tmp_path: Path
) -> None:
    version = registry.register(bundle_with_version(bundle, tmp_path / "bundle", "engage/registry-next"))
    reloaded = httpx.post(f"{champion_server.url}/admin/reload", headers=ADMIN, timeout=300)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["version"] == f"engage/{version}" != champion_server.good_version
    assert httpx.get(f"{champion_server.url}/ready").json()["version"] == f"engage/{version}"


def test_server_refuses_to_start_on_a_registry_champion_with_incomplete_artefacts(
    bundle: Path, tmp_path: Path
) -> None:
    registry = Registry(tmp_path / "store")
    version = registry.register(bundle_with_version(bundle, tmp_path / "bundle", "engage/broken"))
    damage_remove_file(registry.stored_bundle(version))
    server = ServeProcess("models:/engage@champion", tmp_path / "serve.log", "--tracking-uri",
                          registry.uri).start()
    assert server.process is not None
    try:
        returncode = server.process.wait(timeout=180)
    finally:
        server.__exit__()
    assert returncode == 2
    assert "cannot serve model models:/engage@champion" in server.log()
    assert "is incomplete: context_vectors.npz is missing" in server.log()
