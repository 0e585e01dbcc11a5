"""The demo population on disk: generate it (atomically, `engage.files.staged_write`), check whether a
directory holds a current one (`manifest.json`), and load it as the canonical posts table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image
from pydantic import ValidationError
from tqdm.auto import tqdm

from engage.config import DemoSettings
from engage.data.demo.outcomes import _outcomes
from engage.data.demo.photos import render_photo
from engage.data.demo.plans import (
    PERIOD_END,
    SIMULATOR_VERSION,
    _make_accounts,
    _make_campaigns,
    _period_start,
    _plan_posts,
)
from engage.data.schema import (
    CANONICAL,
    INSIGHT_COUNTS,
    LoadReport,
    attach_report,
    sort_posts,
    validate_posts,
)
from engage.errors import ConfigError, DataError
from engage.files import staged_write

log = logging.getLogger(__name__)


DEFAULT_OUT_DIR: str = DemoSettings.model_fields["out_dir"].default  # one default, in the settings model
MANIFEST = "manifest.json"
_POPULATION_FILES = {MANIFEST, "posts.parquet", "truth.parquet", "images"}
OPTION_NAMES = ("seed", "n_accounts", "posts_per_account", "months", "image_size")


# ----------------------------------------------------------------------------------------------------
# Files


def _validated(options: dict[str, Any]) -> dict[str, int]:
    """The simulator's options through its one settings model (defaults, ranges, unknown names refused)."""
    if "out_dir" in options:
        raise ConfigError("data.demo.out_dir is the directory argument of the demo loader, not an option")
    try:
        settings = DemoSettings(**options)
    except ValidationError as e:
        problems = "; ".join(f"data.demo.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                             for err in e.errors())
        raise ConfigError(f"invalid demo simulator options: {problems}") from e
    return {name: int(getattr(settings, name)) for name in OPTION_NAMES}


def _manifest(options: dict[str, int], n_posts: int, n_accounts: int) -> dict[str, Any]:
    return {
        "simulator": "engage.data.demo", "version": SIMULATOR_VERSION, "options": options,
        "period_end": PERIOD_END.isoformat(), "posts": n_posts, "accounts": n_accounts,
    }


def _write_population(out_dir: Path, options: dict[str, int], progress: bool = True) -> None:
    """Generate the whole population into `out_dir` (an empty directory); manifest.json is written last."""
    seed, size = options["seed"], options["image_size"]
    start, end = _period_start(options["months"]), PERIOD_END
    accounts = _make_accounts(seed, options["n_accounts"], options["posts_per_account"])
    campaigns = _make_campaigns(seed, accounts, start, end)
    plans = _plan_posts(seed, accounts, campaigns, start, end)
    posts, truth = _outcomes(seed, accounts, plans, start, end)

    for account in accounts:
        (out_dir / "images" / account.name).mkdir(parents=True, exist_ok=True)
    # A campaign's posts share its photo (rendered once per worker); every other post renders its own plan.
    photos = {c.index: c.photo for c in campaigns}
    jobs = [(photos[plan.campaign] if plan.campaign >= 0 else plan.photo, plan.campaign,
             str(out_dir / image_path), accounts[plan.account].jpeg_quality)
            for plan, image_path in zip(plans, posts["image"], strict=True)]
    _render_all(jobs, size, progress)

    posts["posted_at"] = pd.to_datetime(posts["posted_at"], utc=True)
    posts = sort_posts(posts).reset_index(drop=True)
    posts = posts.astype({"likes": "int64", "comments": "Int64", "followers": "Int64", "sponsored": "boolean",
        "felt_fake": "boolean", "is_video": "bool", **dict.fromkeys(INSIGHT_COUNTS, "Int64")})
    truth = truth.set_index("post_id").loc[posts["post_id"]].reset_index()
    posts[CANONICAL].to_parquet(out_dir / "posts.parquet", index=False)
    truth.to_parquet(out_dir / "truth.parquet", index=False)
    manifest = _manifest(options, len(posts), len(accounts))
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")


#: From this many photos they are rendered over the CPUs the process may use, in tasks of `RENDER_CHUNK`
#: (~1-2 s of work each); below it, starting the workers costs more than they save (2-6 s on 2 busy cores).
PARALLEL_PHOTOS = 1000
RENDER_CHUNK = 128


def _render_chunk(jobs: list[tuple[Any, int, str, int]], size: int) -> int:
    """Render and save each (photo plan, campaign, path, JPEG quality); a campaign's photo renders once."""
    campaigns: dict[int, Image.Image] = {}
    for photo, campaign, path, quality in jobs:
        if campaign >= 0:
            image = campaigns.get(campaign)
            if image is None:
                image = campaigns[campaign] = render_photo(photo, size)
        else:
            image = render_photo(photo, size)
        image.save(path, format="JPEG", quality=quality)
    return len(jobs)


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _render_all(jobs: list[tuple[Any, int, str, int]], size: int, progress: bool) -> None:
    """Every photo of the population, over the CPUs the process may use (rendering is pure: a photo's pixels
    depend on its plan alone, so the files are the same whichever worker writes them)."""
    chunks = [jobs[start:start + RENDER_CHUNK] for start in range(0, len(jobs), RENDER_CHUNK)]
    bar = tqdm(total=len(jobs), desc="demo posts", unit="post", mininterval=0.5, disable=not progress)
    with bar:
        if _cpus() > 1 and len(jobs) >= PARALLEL_PHOTOS:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=min(_cpus(), len(chunks)), backend="loky", return_as="generator")
            for done in parallel(delayed(_render_chunk)(chunk, size) for chunk in chunks):
                bar.update(done)
        else:
            for chunk in chunks:
                bar.update(_render_chunk(chunk, size))


def _read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_current(out_dir: str | Path, **options: int) -> bool:
    """Whether `out_dir` holds a complete population generated by this simulator version with `options`."""
    out_dir = Path(out_dir)
    options = _validated(options)
    manifest = _read_manifest(out_dir)
    if manifest is None or manifest.get("simulator") != "engage.data.demo":
        return False
    if manifest.get("version") != SIMULATOR_VERSION or manifest.get("options") != options:
        return False
    try:
        images = pd.read_parquet(out_dir / "posts.parquet", columns=["image"])["image"]
    except (OSError, ValueError) as e:
        log.warning("demo population in %s is unreadable (%s); regenerating", out_dir, e)
        return False
    if len(images) != manifest.get("posts") or not (out_dir / "truth.parquet").is_file():
        return False
    missing = [p for p in images if not (out_dir / p).is_file()]
    if missing:
        log.warning("demo population in %s is missing %d images (e.g. %s); regenerating", out_dir,
                    len(missing), missing[0])
        return False
    return True


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DataError("exists and is not a directory; point data.demo.out_dir at a new or empty directory",
                        file=out_dir)
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in _POPULATION_FILES)
    if foreign:
        raise DataError(
            "holds files that are not a demo population "
            f"({', '.join(foreign[:3])}); the simulator replaces its "
            "directory, so point data.demo.out_dir at a new or empty directory",
            file=out_dir,
        )


def generate_demo(out_dir: str | Path, **options: int) -> Path:
    """Generate the demo population into `out_dir` (replacing an older one) and return `out_dir`.

    `options` are fields of `engage.config.DemoSettings` (seed, n_accounts, posts_per_account, months,
    image_size), validated by it; what is not given takes its default there.

    Writes posts.parquet (canonical columns, image paths relative to `out_dir`), truth.parquet (every latent
    quantity per post), images/<account>/<post_id>.jpg and manifest.json. Atomic: the population is built in
    a temporary sibling directory and renamed into place.
    """
    return _generate(Path(out_dir), _validated(options), keep_current=False)


def _generate(out_dir: Path, options: dict[str, int], *, keep_current: bool, progress: bool = True) -> Path:
    """Build in a temporary sibling, then rename into place; with `keep_current`, a population that another
    process finished meanwhile is kept and ours discarded."""
    _check_replaceable(out_dir)
    began = time.perf_counter()
    with staged_write(out_dir, directory=True) as staging:
        _write_population(staging.path, options, progress)
        staging.discard = keep_current and is_current(out_dir, **options)
    if not staging.discard:
        log.info("generated the demo population (%s) in %s in %.1f s", options, out_dir,
                 time.perf_counter() - began)
    return out_dir


def load_demo(path: str | Path | None = None, *, progress: bool = True, **options: int) -> pd.DataFrame:
    """The demo posts as the canonical table, generating them into `path` (default data/demo) if needed.

    `options` are fields of `engage.config.DemoSettings`, as for `generate_demo`.

    An existing population is reused when its manifest matches the options and simulator version and all
    its files are present; otherwise it is regenerated. `image` holds absolute paths to the JPEGs.
    """
    options = _validated(options)
    out_dir = Path(path if path is not None else DEFAULT_OUT_DIR)
    if is_current(out_dir, **options):
        log.info("reusing the demo population in %s", out_dir)
    else:
        _generate(out_dir, options, keep_current=True, progress=progress)
    file = out_dir / "posts.parquet"
    posts = validate_posts(pd.read_parquet(file), file=file, images_dir=out_dir.resolve())
    return attach_report(posts, LoadReport(source="demo", path=str(out_dir)))


def load_truth(path: str | Path | None = None) -> pd.DataFrame:
    """The ground truth of a generated population (one row per post, aligned by post_id)."""
    file = Path(path if path is not None else DEFAULT_OUT_DIR) / "truth.parquet"
    if not file.is_file():
        raise DataError("does not exist; generate the demo population first (load_demo or generate_demo)",
                        file=file)
    return pd.read_parquet(file)


#: Options of the `demo` source: the simulator's settings (`data.demo`), `out_dir` the default path.
DemoOptions = DemoSettings


def load_source(path: Path | None, options: DemoSettings, *, progress: bool = True) -> pd.DataFrame:
    """The `demo` source of the registry (engage/data/sources.py):
    generated into `path` (default `out_dir`)."""
    simulator = options.model_dump()
    out_dir = simulator.pop("out_dir")
    return load_demo(path if path is not None else out_dir, progress=progress, **simulator)
