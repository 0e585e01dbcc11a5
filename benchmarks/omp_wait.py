"""Time fitting the smoke demo's models with spinning vs passive OpenMP threads, in one run.

    python benchmarks/omp_wait.py            # needs the smoke demo's features cached (any smoke training)

Each variant runs in its own process (the OpenMP runtime reads OMP_WAIT_POLICY once, at load); the
difference shows when other work shares the cores. Prints JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIT = """
import time, warnings
warnings.filterwarnings("ignore")
from engage.config import load_settings
from engage.training import load_training_posts, _labels, fit_targets
from engage.features.pipeline import FeaturePipeline
from engage.model import evaluation as ev
s = load_settings("configs/smoke.yaml")
posts = load_training_posts(s); posts.attrs = {}
p = FeaturePipeline.from_settings(s); v = p.embed(posts, progress=False)
split = ev.time_split(posts, 0.2, 0.15); p.fit(v, rows=split.train); X = p.transform(posts, v)
labels, _, _ = _labels(posts, X)
t = time.perf_counter(); fit_targets(s, X, labels, split); print(time.perf_counter() - t)
"""


def fit_seconds(policy: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run([sys.executable, "-c", FIT], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    result = {policy: round(fit_seconds(policy), 2) for policy in ("ACTIVE", "PASSIVE")}
    result["load_average_1min"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
