"""Latency of scoring one draft over HTTP, next to the in-process floor and to `mlflow models serve`.

    python benchmarks/serve_latency.py                                   # models:/engage@champion, N=100
    python benchmarks/serve_latency.py --model models/engage --no-mlflow # an exported bundle only
    python benchmarks/serve_latency.py --tracking-uri sqlite:////tmp/x/mlflow.db -n 50

One draft (a 1080x1080 JPEG of scikit-image's coffee photo, a caption with a few hashtags, the
account of the model's latest post, the day after it) is scored N times, one request after another, by

  (a) `python serve.py` (this project's service): POST /v1/score with the photo base64 in JSON;
  (b) the floor: `EngageModel.score` called directly in this process (decode + embed + features +
      predict, no HTTP, no JSON);
  (c) `mlflow models serve -m <uri> --env-manager local`: POST /invocations with the pyfunc's
      dataframe_split input (skipped for a bundle directory, which is not an MLflow model).

Each gets `--warmup` untimed calls first; then each of N rounds times one call of every kind in turn, so
that load from other work on the machine falls on all of them alike. If the logged MLflow signature has no
`image` column (MLflow then silently drops the photo), ours is also timed on the draft without the photo,
for a like-for-like comparison. Prints one JSON object: p50/p99/mean in ms of each, the ratio of
(a) to (b) at p50, whether the targets hold (p50 within 1.3x of the floor and under 100 ms), and the
machine's load average (a shared machine makes CPU figures noisy).
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
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
CAPTION = "Slow Sunday: fresh coffee on the balcony before the market #coffee #sunday #slowliving"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def coffee_jpeg(size: int = 1080) -> bytes:
    picture = Image.fromarray(skimage.data.coffee()).resize((size, size), Image.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "mean_ms": round(float(ms.mean()), 1), "n": len(ms)}


def wait_until(url: str, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
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


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def mlflow_input_names(uri: str) -> list[str] | None:
    import mlflow

    signature = mlflow.models.get_model_info(uri).signature
    return None if signature is None else list(signature.inputs.input_names())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models:/engage@champion", help="MLflow model URI or bundle directory")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow tracking store")
    parser.add_argument("-n", type=int, default=100, help="timed calls of each kind (default 100)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls of each kind first (default 5)")
    parser.add_argument("--size", type=int, default=1080, help="side of the JPEG, pixels (default 1080)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip `mlflow models serve`")
    args = parser.parse_args()

    # serve.py sleeps idle OpenMP threads (OMP_WAIT_POLICY=PASSIVE); the floor and MLflow get the same setting.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ENGAGE_ALLOW_DOWNLOAD": "0", "MLFLOW_TRACKING_URI": args.tracking_uri,
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    os.environ.update(env)  # before torch is imported below
    jpeg = coffee_jpeg(args.size)
    image_b64 = base64.b64encode(jpeg).decode()
    logs = Path(tempfile.mkdtemp(prefix="serve-latency-"))
    result: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "model": args.model, "image": f"{args.size}x{args.size} JPEG, {len(jpeg) / 1024:.0f} KiB",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_start": os.getloadavg()},
        "omp_wait_policy": env["OMP_WAIT_POLICY"],
    }

    from engage.model.bundle import EngageModel
    from engage.model.draft import Draft

    model = EngageModel.from_uri(args.model, args.tracking_uri)
    model.check_embedder()
    # The account of the model's latest post, the day after it: a known account with a full history.
    latest = model.context_posts["posted_at"].idxmax()
    account = str(model.context_posts.loc[latest, "account"])
    when = (model.context_posts.loc[latest, "posted_at"].normalize() + pd.Timedelta(days=1, hours=18)).isoformat()
    result.update(embedder=model.embedder, model_version=model.version, account=account, posted_at=when)
    with_photo = Draft(account=account, caption=CAPTION, image=jpeg, posted_at=when)
    body = {"account": account, "caption": CAPTION, "image": image_b64, "posted_at": when}

    use_mlflow = not (args.no_mlflow or Path(args.model).is_dir())
    mlflow_drops_photo = use_mlflow and "image" not in (mlflow_input_names(args.model) or ["image"])
    servers: list[subprocess.Popen] = []
    try:
        port = free_port()
        servers.append(start([sys.executable, "serve.py", "--model", args.model, "--tracking-uri", args.tracking_uri,
                              "--port", str(port), "--log-level", "warning"],
                             f"http://127.0.0.1:{port}/ready", logs / "serve.log", env))
        ours = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        # Every kind of call is timed in turn within each round, so load from other work on the machine
        # falls on all of them alike.
        calls: dict[str, Callable[[], Any]] = {
            "floor": lambda: model.score(with_photo),
            "http": lambda: ours.post("/v1/score", json=body).raise_for_status(),
        }
        if use_mlflow:
            port = free_port()
            servers.append(start(["mlflow", "models", "serve", "-m", args.model, "--env-manager", "local", "--host",
                                  "127.0.0.1", "-p", str(port)], f"http://127.0.0.1:{port}/ping", logs / "mlflow.log", env))
            theirs = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
            columns = ["account", "caption", "posted_at", "followers", "sponsored", "image"]
            payload = {"dataframe_split": {"columns": columns, "data": [[account, CAPTION, when, None, False, image_b64]]}}
            calls["mlflow"] = lambda: theirs.post("/invocations", json=payload).raise_for_status()
            if mlflow_drops_photo:
                # MLflow drops input columns its signature lacks, so it scores the draft without the photo;
                # time ours on that same draft too, for a like-for-like comparison.
                without_photo = with_photo.model_copy(update={"image": None})
                calls["floor_without_photo"] = lambda: model.score(without_photo)
                calls["http_without_photo"] = lambda: ours.post(
                    "/v1/score", json={k: v for k, v in body.items() if k != "image"}).raise_for_status()
        for call in calls.values():
            for _ in range(args.warmup):
                call()
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        for _ in tqdm(range(args.n), desc="rounds", file=sys.stderr):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - started)
    finally:
        for server in servers:
            stop(server)

    for name, values in seconds.items():
        result[name] = stats(values)
    result["ratio_http_to_floor_p50"] = round(result["http"]["p50_ms"] / result["floor"]["p50_ms"], 3)
    if mlflow_drops_photo:
        result["mlflow_note"] = ("the logged model's signature has no `image` column, so `mlflow models serve` drops "
                                 "the photo and scores the caption only; compare it with *_without_photo")
    elif not use_mlflow:
        result["mlflow"] = "skipped" + (" (a bundle directory is not an MLflow model)" if Path(args.model).is_dir() else "")
    result["targets"] = {"http_p50_within_1.3x_floor": result["ratio_http_to_floor_p50"] <= 1.3,
                         "http_p50_under_100ms": result["http"]["p50_ms"] < 100}
    result["machine"]["load_avg_end"] = os.getloadavg()
    result["logs"] = str(logs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
