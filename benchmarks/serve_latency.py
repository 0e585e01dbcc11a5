"""Latency of scoring one draft over HTTP, next to the plain-PyTorch floor, with and without a history.

    python benchmarks/serve_latency.py                                   # models:/engage@champion, N=100
    python benchmarks/serve_latency.py --model models/engage --no-mlflow # an exported bundle only
    python benchmarks/serve_latency.py --tracking-uri sqlite:////tmp/x/mlflow.db -n 50

A draft (a 1080x1080 JPEG of scikit-image's coffee photo, a caption with a few hashtags, the account of
the model's latest post, the day after it) is scored N times, one request after another. Every call gets a
photo and caption never seen before (the JPEG carries a numbered comment segment, the caption a number),
so the service's vector cache cannot answer from memory what a real new draft would cost. Timed:

  (a) `python serve.py` (this project's service): POST /v1/score with the photo base64 in JSON;
  (b) the old floor: the same photo decoded (PIL) and embedded by EfficientNet-Lite0 and the caption by
      MiniLM in plain PyTorch in this process (`runtime="torch"`): the neural networks alone, as engage
      ran them before ONNX Runtime, without features, models or HTTP;
  (b') the floor since issue 21: the same decode and the model's own embedders as engage runs them (ONNX
      Runtime; the static caption table where the model uses it): target (a) <= 1.3x (b');
  (b'') the same, the photo decoded as the model decodes it (`photo_decoding`: a model trained with
      jpeg-scaled-v1 decodes a 1080 px JPEG at 540 px); only for such a model, next to (b');
  (g) the cache: ONE draft sent again and again over HTTP (its vectors come from the vector cache), against
  (h) the features and trees of that draft in this process, its vectors cached: target (g) <= 1.2x (h);
  (c) `EngageModel.score` in this process (everything but HTTP);
  (d) a new account's draft without history and (e) the same account's draft with a 5-photo history,
      the same history on every call (as a client sends it with each draft), over HTTP;
  (f) `mlflow models serve -m <uri> --env-manager local`: POST /invocations with the pyfunc's
      dataframe_split input (skipped for a bundle directory, or with --no-mlflow).

Each gets `--warmup` untimed calls first; then each of N rounds times one call of every kind in turn, so
that load from other work on the machine falls on all of them alike. Prints one JSON object: p50/p99/mean
in ms of each, the ratios (a)/(b) and (e)/(d) at p50 with their targets (1.3x each), and the machine's
load average (a shared machine makes CPU figures noisy).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import skimage.data
from PIL import Image

# benchmarks/serve_process.py: the script's own folder is on sys.path
from serve_process import numbered_jpeg, stop_serve
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
CAPTION = "Slow Sunday: fresh coffee on the balcony before the market #coffee #sunday #slowliving"
HISTORY_PHOTOS = ("astronaut", "chelsea", "rocket", "cat", "immunohistochemistry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_jpeg(name: str = "coffee", size: int = 1080) -> bytes:
    picture = Image.fromarray(getattr(skimage.data,
                                      name)()).convert("RGB").resize((size, size), Image.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


class PlainTorch:
    """The floor: decode + EfficientNet-Lite0 + MiniLM in plain PyTorch, nothing else."""

    def __init__(self) -> None:
        from engage.embed.image import EfficientNetEmbedder

        try:
            from engage.embed.decoding import open_image
            from engage.embed.text import MiniLMEmbedder
        except ImportError:  # an engage from before the modules were split (to measure the "before" figures)
            from engage.embed.image import open_image  # type: ignore[no-redef]
            from engage.features.caption import MiniLMEmbedder  # type: ignore[no-redef]

        self.open_image = open_image
        try:
            self.image = EfficientNetEmbedder(device="cpu", runtime="torch", num_workers=0)
            self.text = MiniLMEmbedder(device="cpu", runtime="torch")
        # an engage from before ONNX Runtime (to measure the "before" figures): PyTorch only
        except TypeError:
            self.image = EfficientNetEmbedder(device="cpu", num_workers=0)
            self.text = MiniLMEmbedder(device="cpu")

    def __call__(self, jpeg: bytes, caption: str) -> None:
        self.image.embed([self.open_image(jpeg)])
        self.text.embed([caption])


class OnnxFloor:
    """The new floor (issue 21): the same draft decoded (PIL) and run through the model's own embedders as
    engage runs them on a CPU (EfficientNet-Lite0 on ONNX Runtime; the caption embedder the model was trained
    with: MiniLM on ONNX Runtime or the static table): the embedders' forward passes alone. `model_decoding`:
    the photo decoded as the model decodes it (a reduced-size JPEG decode) instead of in full."""

    def __init__(self, model: Any, model_decoding: bool = False) -> None:
        from engage.embed.decoding import open_image

        self.open_image = open_image
        if model_decoding:
            from engage.embed.decoding import decode_photo

            decoding = model.pipeline.photo_decoding
            self.open_image = lambda data: decode_photo(data, decoding=decoding)[0]
        self.image = model.pipeline.image_embedder
        self.text = model.pipeline.text_embedder
        self.image.embed([self.open_image(photo_jpeg("coffee", 64))])  # sessions loaded before timing
        self.text.embed(["warm up"])

    def __call__(self, jpeg: bytes, caption: str) -> None:
        self.image.embed([self.open_image(jpeg)])
        self.text.embed([caption])


def stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "mean_ms": round(float(ms.mean()), 1), "n": len(ms)}


def wait_until(url: str, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"{url}: the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer 200 within {timeout} s; see {log}")


def start(command: list[str], ready_url: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    handle = open(log, "wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    wait_until(ready_url, process, log)
    return process



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models:/engage@champion",
                        help="MLflow model URI or bundle directory")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking store")
    parser.add_argument("-n", type=int, default=100, help="timed calls of each kind (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls of each kind first (default 5)")
    parser.add_argument("--size", type=int, default=1080, help="side of the JPEG, pixels (default 1080)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip `mlflow models serve`")
    args = parser.parse_args()

    # serve.py sleeps idle OpenMP threads (OMP_WAIT_POLICY=PASSIVE);
    # the floor and MLflow get the same setting.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0",
           "MLFLOW_TRACKING_URI": args.tracking_uri,
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
           "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT", "0")}
    os.environ.update(env)  # before torch is imported below
    jpeg = photo_jpeg("coffee", args.size)
    logs = Path(tempfile.mkdtemp(prefix="serve-latency-"))
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "model": args.model,
        "image": f"{args.size}x{args.size} JPEG, {len(jpeg) / 1024:.0f} KiB, new bytes every call",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_start": os.getloadavg()},
        "omp_wait_policy": env["OMP_WAIT_POLICY"],
    }

    from engage.model.bundle import EngageModel
    from engage.model.draft import Draft
    from engage.scoring.scorer import Scorer

    model = EngageModel.from_uri(args.model, args.tracking_uri)
    model.check_embedder()
    # In-process scorers run as the server runs them (`for_serving`: NumPy's BLAS in one thread; its idle
    # threads otherwise busy-wait and tripled (c) and (h) here). Only NumPy's OpenBLAS is affected: PyTorch
    # and ONNX Runtime, the floors, keep their own thread pools.
    scorer = Scorer.for_serving(model)
    # A vector cache in this process too, for the features-and-trees time of a draft whose vectors are known.
    cached = Scorer.for_serving(model, vector_cache_items=64)
    floor = PlainTorch()
    onnx_floor = OnnxFloor(model)
    # a model that decodes its photos at a reduced size (photo decoding jpeg-scaled-v1 and later)
    scaled = getattr(getattr(model.pipeline, "photo_decoding", None), "version", "full") != "full"
    model_floor = OnnxFloor(model, model_decoding=True) if scaled else None
    # The account of the model's latest post, the day after it: a known account with a full history.
    latest = model.context_posts["posted_at"].idxmax()
    account = str(model.context_posts.loc[latest, "account"])
    day = model.context_posts.loc[latest, "posted_at"].normalize() + pd.Timedelta(days=1)
    when = (day + pd.Timedelta(hours=18)).isoformat()
    result.update(embedder=model.embedder, model_version=model.version, account=account, posted_at=when)
    history = [{"caption": f"Earlier post {i}: {name} #throwback", "likes": 40 + 7 * i, "comments": 3,
                "posted_at": (day - pd.Timedelta(days=5 - i)).isoformat(),
                "image": base64.b64encode(photo_jpeg(name, args.size)).decode()} for i,
                name in enumerate(HISTORY_PHOTOS)]
    counter = iter(range(10**9))

    def fresh() -> tuple[bytes, str, str]:
        """A photo and caption never sent before (same pixels and words, new bytes)."""
        k = next(counter)
        photo = numbered_jpeg(jpeg, k)
        return photo, f"{CAPTION} #{k}", base64.b64encode(photo).decode()

    use_mlflow = not (args.no_mlflow or Path(args.model).is_dir())
    servers: list[subprocess.Popen] = []
    try:
        port = free_port()
        servers.append(start([sys.executable, "serve.py", "--model", args.model, "--tracking-uri",
                              args.tracking_uri,
                              "--port", str(port), "--log-level", "warning"],
                             f"http://127.0.0.1:{port}/ready", logs / "serve.log", env))
        ours = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        result["serving_settings"] = {k: v for k, v in ours.get("/ready").json().items()
                                      if k in ("batching", "vector_cache")}

        def http(extra: dict[str, Any] | None = None, who: str = account) -> Callable[[], Any]:
            def call() -> Any:
                _, caption, b64 = fresh()
                body = {"account": who, "caption": caption, "image": b64, "posted_at": when, **(extra or {})}
                return ours.post("/v1/score", json=body).raise_for_status()
            return call

        def in_process() -> Any:
            photo, caption, _ = fresh()
            return scorer.score(Draft(account=account, caption=caption, image=photo, posted_at=when))

        def plain_torch() -> Any:
            photo, caption, _ = fresh()
            return floor(photo, caption)

        def onnx() -> Any:
            photo, caption, _ = fresh()
            return onnx_floor(photo, caption)

        def onnx_model_decoding() -> Any:
            photo, caption, _ = fresh()
            return model_floor(photo, caption)  # type: ignore[misc]

        repeat_photo, repeat_caption, repeat_b64 = fresh()  # the one draft sent again and again (cached)

        def http_cached() -> Any:
            body = {"account": account, "caption": repeat_caption, "image": repeat_b64, "posted_at": when}
            return ours.post("/v1/score", json=body).raise_for_status()

        repeat_draft = Draft(account=account, caption=repeat_caption, image=repeat_photo, posted_at=when)

        def features_and_trees() -> Any:
            features, _ = cached.features_for(repeat_draft)  # its vectors come from this process's cache
            return cached.predict_features(features)

        # Every kind of call is timed in turn within each round, so load from other work on the machine
        # falls on all of them alike.
        calls: dict[str, Callable[[], Any]] = {
            "floor_plain_pytorch": plain_torch,
            "floor_onnx_runtime": onnx,
            # the floor decoded as the model decodes (a reduced-size JPEG decode), only for such a model
            **({"floor_onnx_runtime_model_decoding": onnx_model_decoding} if model_floor is not None else {}),
            "http": http(),
            "http_cached_repeat": http_cached,
            "features_and_trees_cached": features_and_trees,
            "in_process_score": in_process,
            "http_new_account_no_history": http({"followers": 900}, who="new.account"),
            "http_new_account_5_photo_history": http({"followers": 900, "history": history},
                                                     who="new.account"),
        }
        if use_mlflow:
            port = free_port()
            servers.append(start(["mlflow", "models", "serve", "-m", args.model, "--env-manager", "local",
                                  "--host",
                "127.0.0.1", "-p", str(port)], f"http://127.0.0.1:{port}/ping", logs / "mlflow.log", env))
            theirs = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
            columns = ["account", "caption", "posted_at", "followers", "sponsored", "image"]

            def mlflow_call() -> Any:
                _, caption, b64 = fresh()
                payload = {"dataframe_split": {"columns": columns,
                                               "data": [[account, caption, when, None, False, b64]]}}
                return theirs.post("/invocations", json=payload).raise_for_status()
            calls["mlflow"] = mlflow_call
        for call in calls.values():
            for _ in range(args.warmup):
                call()
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        for _ in tqdm(range(args.n), desc="rounds", file=sys.stderr):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - started)
        result["serving_after"] = {k: v for k, v in ours.get("/ready").json().items()
                                   if k in ("batching", "vector_cache")}
    finally:
        for server in servers:
            stop_serve(server)

    for name, values in seconds.items():
        result[name] = stats(values)
    result["ratio_http_to_floor_p50"] = round(
        result["http"]["p50_ms"] / result["floor_plain_pytorch"]["p50_ms"], 3)
    result["ratio_http_to_onnx_floor_p50"] = round(
        result["http"]["p50_ms"] / result["floor_onnx_runtime"]["p50_ms"], 3)
    if "floor_onnx_runtime_model_decoding" in result:
        result["ratio_http_to_onnx_floor_model_decoding_p50"] = round(
            result["http"]["p50_ms"] / result["floor_onnx_runtime_model_decoding"]["p50_ms"], 3)
    result["ratio_cached_repeat_to_features_and_trees_p50"] = round(
        result["http_cached_repeat"]["p50_ms"] / result["features_and_trees_cached"]["p50_ms"], 3)
    result["ratio_history_to_no_history_p50"] = round(
        result["http_new_account_5_photo_history"]["p50_ms"] / result["http_new_account_no_history"][
            "p50_ms"], 3)
    if not use_mlflow:
        result["mlflow"] = "skipped" + (" (a bundle directory is not an MLflow model)"
                                        if Path(args.model).is_dir() else "")
    result["targets"] = {"http_p50_within_1.3x_plain_pytorch_floor": result["ratio_http_to_floor_p50"] <= 1.3,
                         "http_p50_within_1.3x_onnx_floor": result["ratio_http_to_onnx_floor_p50"] <= 1.3,
                         "cached_repeat_within_1.2x_features_and_trees":
                             result["ratio_cached_repeat_to_features_and_trees_p50"] <= 1.2,
        "history_p50_within_1.3x_no_history": result["ratio_history_to_no_history_p50"] <= 1.3,
                         "http_p50_under_100ms": result["http"]["p50_ms"] < 100}
    result["machine"]["load_avg_end"] = os.getloadavg()
    result["logs"] = str(logs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
