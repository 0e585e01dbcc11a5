"""What a hostile Instaloader dump costs `load_dump`: many tiny files plus the hostile files of issue 22.

    python benchmarks/hostile_dump.py                      # 100,000 tiny post files + the hostile ones
    python benchmarks/hostile_dump.py --files 20000 --keep /tmp/dump

The dump holds `--files` tiny valid post files and: the 468 KB `.json.xz` of 3 GiB of spaces
(tests/security/fixtures), a `.json` link to /dev/zero, a FIFO, a link to a file outside the dump and a file
nested 200,000 lists deep. Each hostile file must be skipped and named; the script prints the seconds and
the peak resident memory of the load (a fresh process: `ru_maxrss` of this one, which does nothing else),
then the same load without the hostile files, so that what they cost is the difference. See docs/security.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOMB = ROOT / "tests" / "security" / "fixtures" / "spaces-3gb.json.xz"


def make_dump(folder: Path, files: int, hostile: bool) -> None:
    account = folder / "many"
    account.mkdir(parents=True)
    for i in range(files):
        node = {"shortcode": f"T{i}", "taken_at_timestamp": 1_690_000_000 + i,
                "edge_media_preview_like": {"count": i % 97},
                "edge_media_to_comment": {"count": 1}, "owner": {"username": "many"}}
        (account / f"t{i:06d}.json").write_text(json.dumps({"node": node,
                                                            "instaloader": {"node_type": "Post"}}))
    if hostile:
        shutil.copy(BOMB, account / "bomb.json.xz")
        os.symlink("/dev/zero", account / "zero.json")
        os.mkfifo(account / "fifo.json")
        outside = folder.parent / f"{folder.name}-outside.json"
        outside.write_text("{}")
        os.symlink(outside, account / "outside.json")
        (account / "deep.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)


def measure(path: Path) -> None:
    """Run in a child process: load the dump and print seconds, peak RSS and the skipped files as JSON."""
    from engage.data.instaloader import load_dump

    started = time.perf_counter()
    posts = load_dump(path, progress=False)
    seconds = time.perf_counter() - started
    skipped = [Path(f).name for f, _ in posts.attrs["report"].skipped_files]
    print(json.dumps({"posts": len(posts), "seconds": round(seconds, 2), "skipped": skipped,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def measure_bomb() -> None:
    """Run in a child process: how long the bounded reader
    takes to refuse the bomb, and the process's peak RSS."""
    from engage.bounded import read_json_bounded
    from engage.errors import DataError

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    try:
        read_json_bounded(BOMB)
        refused = ""
    except DataError as e:
        refused = e.message
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "refused": refused,
                      "rss_before_mb": round(before),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="tiny post files (default: 100000)")
    parser.add_argument("--keep", type=Path, default=None, help="build the dumps here and keep them")
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure-bomb", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return 0
    if args.measure_bomb:
        measure_bomb()
        return 0
    run = subprocess.run([sys.executable, __file__, "--measure-bomb"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    bomb = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"the {BOMB.stat().st_size:,}-byte .json.xz of 3 GiB "
          f"of spaces alone: refused in {bomb['seconds']:.2f} s, "
          f"peak RSS {bomb['peak_rss_mb']} MB against {bomb['rss_before_mb']} "
          f"MB before reading it ({bomb['refused']})", flush=True)
    if args.files == 0:
        return 0
    base = args.keep or Path(tempfile.mkdtemp(prefix="hostile-dump-"))
    try:
        for hostile in (True, False):
            folder = base / ("hostile" if hostile else "clean")
            made = time.perf_counter()
            make_dump(folder, args.files, hostile)
            print(f"built {folder} ({args.files:,} tiny files{' + 5 hostile' if hostile else ''}) in "
                  f"{time.perf_counter() - made:.0f} s", flush=True)
            run = subprocess.run([sys.executable, __file__, "--measure", str(folder)], capture_output=True,
                                 text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
            result = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{'hostile' if hostile else 'clean':8s} posts "
                  f"{result['posts']:,}  load {result['seconds']:.1f} s  "
                  f"peak RSS {result['peak_rss_mb']} MB  skipped: {', '.join(result['skipped']) or '-'}",
                  flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
