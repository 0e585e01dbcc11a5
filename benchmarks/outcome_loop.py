"""The outcome loop on a simulated month, with figures: live MAE of likes before and after retraining from
recorded outcomes, with a 95% interval over accounts (paired bootstrap) on the difference.

    python benchmarks/outcome_loop.py                          # configs/smoke.yaml's population (10 accounts)
    python benchmarks/outcome_loop.py --config configs/default.yaml    # the 42-account demo (slower)

Runs engage/simulated_month.py (the code tests/outcomes/test_retrain_loop.py runs) in a temporary
directory: train on the posts before the last two months, publish the first month's drafts through the
serving path and record their outcomes, retrain with data.outcomes=true, score the second month with both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "smoke.yaml"))
    parser.add_argument("--cache-dir", default=str(ROOT / "data" / "cache"),
                        help="embedding cache (reused between runs)")
    args = parser.parse_args()
    from engage.config import load_settings
    from engage.simulated_month import simulate_months

    settings = load_settings(args.config,
                             [f"features.cache_dir={args.cache_dir}", "train.targets=[likes, comments]"])
    with tempfile.TemporaryDirectory() as work:
        result = simulate_months(settings, work)
    print(f"\nconfig {args.config}: month one {result.month_one_posts} drafts published and recorded, "
          f"month two {result.month_two_posts}")
    print(f"retrained model v{result.retrained_model}: {result.retrained_alias} ({result.retrained_reason})")
    print(f"{'live MAE of likes':<26}{'counts':>10}{'log1p':>10}{'posts':>8}")
    for name, figures in result.live_mae.items():
        print(f"{name:<26}{figures['likes_mae']:>10.1f}"
              f"{figures['likes_mae_log']:>10.4f}{int(figures['posts']):>8}")
    mean, low, high = result.difference
    print("retrained - first, month two, MAE of log1p(likes): "
          f"{mean:+.4f} (95% interval over accounts {low:+.4f} "
          f"to {high:+.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
