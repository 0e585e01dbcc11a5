"""How fast and how complete the same-day duplicate index is at 100k and 1M posts.

Synthetic posts: `n / 20` accounts posting over 90 days, random unit embeddings (nothing near-duplicate
by chance at these dimensions), plus planted duplicate groups: `n / 200` groups of 2-6 posts from
different accounts within 20 hours, each a copy of one base vector plus noise (pair cosines about
0.955-0.9975), all with the same 8-word caption. The expected counts of the planted posts are computed
exactly (all pairs inside each group); recall is found / expected, overall and for the pairs closest to
the threshold. Prints one JSON object.

    python benchmarks/duplicates_scale.py                     # 100k and 1M posts, 256-d images
    python benchmarks/duplicates_scale.py --sizes 100000 --dim 512 --caption-dim 384
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from engage.features.duplicates import LSH_TABLES, lsh_bits, pair_recall, same_day_duplicates

DAY_NS = 86_400 * 10**9


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def synthetic_posts(n: int, dim: int, caption_dim: int,
                    seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None, dict]:
    rng = np.random.default_rng(seed)
    n_accounts = max(n // 20, 10)
    n_groups = n // 200
    sizes = rng.integers(2, 7, n_groups)
    planted = int(sizes.sum())
    background = n - planted
    accounts = rng.integers(0, n_accounts, n)
    times = rng.integers(0, 90 * DAY_NS, n)
    image = _unit(rng, n, dim)
    caption_emb = _unit(rng, n, caption_dim) if caption_dim else None
    captions = np.array([f"post {i} of account {a} with its own words" for i, a in enumerate(accounts)],
                        dtype=object)
    group = np.full(n, -1)
    position = background
    for g, size in enumerate(sizes):
        members = np.arange(position, position + size)
        position += size
        group[members] = g
        accounts[members] = rng.choice(n_accounts, size, replace=False)
        times[members] = rng.integers(0, 89 * DAY_NS) + rng.integers(0, 20 * 3600 * 10**9, size)
        noise = rng.uniform(0.05, 0.2)  # pair cosine about 1 / (1 + noise**2)
        base = _unit(rng, 1, dim)[0]
        copies = base + noise * _unit(rng, size, dim)
        image[members] = copies / np.linalg.norm(copies, axis=1, keepdims=True)
        captions[members] = f"limited offer shop the new serum now {g}"
        if caption_emb is not None:
            caption_emb[members] = _unit(rng, 1, caption_dim)[0]
    posts = pd.DataFrame({
        "account": pd.Series(accounts).map(lambda a: f"acct{a}"),
        "posted_at": pd.to_datetime(1_700_000_000 * 10**9 + times, utc=True),
        "caption": captions,
    })
    return posts, image, caption_emb, {"group": group, "accounts": accounts, "times": times}


def expected_counts(image: np.ndarray, truth: dict, threshold: float, window_ns: int
                    ) -> tuple[dict[int, int], dict[int, int], list[float]]:
    """Exact image and caption duplicate counts of the planted posts, and the cosine of every image pair."""
    group, accounts, times = truth["group"], truth["accounts"], truth["times"]
    image_expected: dict[int, int] = {}
    caption_expected: dict[int, int] = {}
    cosines: list[float] = []
    for members in pd.Series(np.arange(len(group))[group >= 0]).groupby(group[group >= 0]).agg(list):
        for i in members:
            same_image, same_caption = set(), set()
            for j in members:
                if accounts[j] == accounts[i] or not times[i] - window_ns <= times[j] <= times[i]:
                    continue
                same_caption.add(accounts[j])
                cosine = float(image[i] @ image[j])
                if cosine >= threshold:
                    same_image.add(accounts[j])
                    cosines.append(cosine)
            image_expected[i] = len(same_image)
            caption_expected[i] = len(same_caption)
    return image_expected, caption_expected, cosines


def run(n: int, dim: int, caption_dim: int, seed: int, threshold: float) -> dict:
    posts, image, caption_emb, truth = synthetic_posts(n, dim, caption_dim, seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    features = same_day_duplicates(posts, image, caption_emb, image_threshold=threshold)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    expected, caption_expected, cosines = expected_counts(image, truth, threshold, 24 * 3600 * 10**9)
    planted = np.array(list(expected))
    found = features["duplicate_image_accounts"].to_numpy()[planted]
    want = np.array([expected[i] for i in planted])
    caption_want = np.array([caption_expected[i] for i in planted])
    background = truth["group"] < 0
    caption_found = features["duplicate_caption_accounts"].to_numpy()
    return {
        "posts": n,
        "image_dim": dim,
        "caption_dim": caption_dim or None,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),  # all threads; near `seconds` * cores when the machine is idle
        "planted_posts": int(len(planted)),
        "expected_image_matches": int(want.sum()),
        "image_recall": round(float(np.minimum(found, want).sum() / max(want.sum(), 1)), 4),
        "image_false_matches": int(np.maximum(found - want, 0).sum() + np.nansum(
            features["duplicate_image_accounts"].to_numpy()[background])),
        "pair_cosine_min": round(min(cosines), 4) if cosines else None,
        "expected_caption_matches": int(caption_want.sum()),
        "caption_recall": round(float(np.minimum(caption_found[planted],
                                                 caption_want).sum() / max(caption_want.sum(), 1)), 4),
        "caption_false_matches": int(np.maximum(caption_found[planted] - caption_want,
                                                0).sum() + caption_found[background].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256, help="image embedding dimension")
    parser.add_argument("--caption-dim", type=int, default=0,
                        help="caption embedding dimension (0: exact captions only)")
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bits = lsh_bits(args.threshold)
    report = {
        "lsh": {"tables": LSH_TABLES, "bits": bits,
                "model_recall_at_threshold": round(pair_recall(args.threshold, bits), 4),
                "model_recall_at_0.97": round(pair_recall(0.97, bits), 4)},
        "runs": [run(n, args.dim, args.caption_dim, args.seed, args.threshold) for n in args.sizes],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
