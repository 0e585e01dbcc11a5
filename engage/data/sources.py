"""Where posts come from: a registry of data sources, as open_clip keeps its models.

    SOURCES["table"]                                   # Source(load, options, path): what the name stands for
    load_posts("table", "posts.csv", images_dir="photos")   # options checked against the source's model

A source is a loader `(path, options, *, progress) -> posts` and a pydantic model of its options (typed,
defaults, unknown names refused), both in the source's own module; `path` says what `data.path` names for it
(None: the source needs none). A new source is one module holding both and one line in `SOURCES`; neither
`load_posts` nor training switches on the name: training hands a source the `data` settings its options
declare (`options_from_settings`). docs/data.md has a worked example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from engage.config import DataSettings
from engage.data import insights, instaloader, table
from engage.data.demo import store as demo
from engage.data.schema import sort_posts
from engage.errors import ConfigError, DataError


class InstaloaderOptions(BaseModel):
    """Options of the `instaloader` source (kept here, not
    in instaloader.py, which is at its 500-line limit)."""

    model_config = ConfigDict(extra="forbid")
    strict: bool = False  # an unreadable file is an error (default: skipped and named in the report)


def load_instaloader(path: Path | None, options: InstaloaderOptions, *,
                     progress: bool = True) -> pd.DataFrame:
    """The `instaloader` source (the registry refuses a missing path first)."""
    assert path is not None
    return instaloader.load_dump(path, strict=options.strict, progress=progress)


@dataclass(frozen=True)
class Source:
    """One data source: its loader, the model of its options, and what `data.path` names for it."""

    load: Callable[..., pd.DataFrame]  # (path: Path | None, options, *, progress: bool) -> canonical posts
    options: type[BaseModel]
    path: str | None  # "a CSV or Parquet file" (required), or None: the path is optional


#: Every data source by name (`data.source`).
SOURCES: dict[str, Source] = {
    "table": Source(table.load_source, table.TableOptions, "a CSV or Parquet file"),
    "instaloader": Source(load_instaloader, InstaloaderOptions, "the dump directory"),
    "insights": Source(insights.load_source, insights.InsightsOptions,
                       "the CSV export or the folder of Graph API JSON files"),
    "demo": Source(demo.load_source, demo.DemoOptions, None),
}


def source(name: str) -> Source:
    """The registry entry of `name`; a DataError naming the known sources otherwise."""
    if name not in SOURCES:
        raise DataError(f"unknown data source {name!r} (data.source); use one of {', '.join(SOURCES)}")
    return SOURCES[name]


def source_options(name: str, options: dict[str, Any]) -> BaseModel:
    """`options` checked against the source's model (types,
    ranges, unknown names): a ConfigError naming them."""
    try:
        return source(name).options(**options)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or name}: {err['msg']}"
                             for err in e.errors())
        raise ConfigError(f"options of data source {name!r}: {problems}") from e


def options_from_settings(data: DataSettings) -> dict[str, Any]:
    """The `data` settings the configured source's options declare (a source's own section, such as `demo`,
    flattened): what training passes to `load_posts`."""
    flat = data.model_dump(exclude={"source", "path"})
    for name, value in list(flat.items()):
        if isinstance(value, dict) and name == data.source:
            flat.pop(name)
            flat.update(value)
    fields = source(data.source).options.model_fields
    return {name: value for name, value in flat.items() if name in fields}


def load_posts(source_name: str, path: str | Path | None = None, *, progress: bool = True, **options: Any
               ) -> pd.DataFrame:
    """Posts from `source_name` (a name in `SOURCES`) at
    `path`, as the canonical table sorted by account then time.

    `options` are the source's own (checked against its model): `images_dir` and `date_format` (day-first,
    month-first or a strptime format for text dates whose day/month order the column does not tell) for
    'table' and `date_format` for 'insights', `strict` for 'instaloader' (an unreadable file is an error
    instead of skipped and named in `posts.attrs["report"].skipped_files`), `account` for 'insights' (the
    account of a single-account export that names none), the simulator's settings for 'demo' (seed,
    n_accounts, ...; `path` is the directory it writes to, generated on first use). `progress=False` hides the
    progress bars of long loads.
    """
    spec = source(source_name)
    if spec.path is not None and path is None:
        raise DataError(f"data.source is {source_name!r} but data.path is not set; point it at {spec.path}")
    posts = spec.load(None if path is None else Path(path), source_options(source_name, options),
                      progress=progress)
    report = posts.attrs.get("report")
    posts = sort_posts(posts).reset_index(drop=True)
    if report is not None:
        posts.attrs["report"] = report
    return posts
