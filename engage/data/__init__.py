"""Posts in, canonical table out.

`load_posts(source, path, **options)` is the one entry point: every source in the registry
(engage/data/sources.py: a table, an Instaloader dump, an insights export, the demo simulator) returns the
same columns (see `engage.data.schema.COLUMNS`), sorted by account then time.
"""

from __future__ import annotations

from engage.data.schema import CANONICAL, COLUMNS, LoadReport, validate_posts
from engage.data.sources import SOURCES, load_posts

__all__ = ["CANONICAL", "COLUMNS", "LoadReport", "SOURCES", "load_posts", "validate_posts"]
