"""The data-source registry (engage/data/sources.py): names, typed options, and a new source in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict

from engage.config import load_settings
from engage.data import load_posts
from engage.data.schema import LoadReport, attach_report, validate_posts
from engage.data.sources import SOURCES, Source, options_from_settings
from engage.errors import ConfigError, DataError
from engage.training import load_training_posts


def test_an_unknown_source_names_the_known_ones():
    with pytest.raises(DataError,
                       match=r"unknown data source 'excel' \(data.source\); use one of table, instaloader"):
        load_posts("excel", "x")


def test_options_are_checked_against_the_sources_own_model(tmp_path):
    with pytest.raises(
        ConfigError, match=r"options of data source 'instaloader': strict: Input should be a valid boolean"):
        load_posts("instaloader", tmp_path, strict="sometimes")
    with pytest.raises(ConfigError,
                       match=r"options of data source 'table': strict: Extra inputs are not permitted"):
        load_posts("table", tmp_path / "posts.csv", strict=True)  # tables are always strict: no such option


def test_a_source_that_needs_a_path_says_what_to_point_it_at():
    with pytest.raises(DataError,
                       match=r"data.source is 'instaloader' but data.path is not set; point it at the dump"):
        load_posts("instaloader")


def test_training_hands_each_source_the_data_settings_its_options_declare():
    settings = load_settings(None, ["data.source=insights", "data.account=anna", "data.images_dir=photos"])
    assert options_from_settings(settings.data) == {"account": "anna", "date_format": None}
    settings = load_settings(None, ["data.source=table", "data.images_dir=photos", "data.strict=true",
                                    "data.date_format=day-first", "data.account=anna"])
    assert options_from_settings(settings.data) == {"images_dir": "photos", "date_format": "day-first",
                                                    "columns": None, "account": "anna"}
    demo = options_from_settings(load_settings(None, ["data.demo.seed=3"]).data)
    assert demo["seed"] == 3 and demo["out_dir"] == "data/demo" and "strict" not in demo


# -- a new source: one module (here, the two definitions below) and one registry line ------------------------

class JsonLinesOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    images_dir: str | None = None


def load_json_lines(path: Path | None, options: JsonLinesOptions, *, progress: bool = True) -> pd.DataFrame:
    """Posts from a JSON Lines file, one post per line with the canonical column names."""
    assert path is not None
    raw = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
    posts = validate_posts(raw, file=path, images_dir=options.images_dir)
    return attach_report(posts, LoadReport(source="jsonl", path=str(path)))


def test_a_new_source_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(SOURCES, "jsonl", Source(load_json_lines, JsonLinesOptions, "a JSON Lines file"))
    rows = [{"account": "ben", "post_id": "2", "posted_at": "2024-03-02T10:00:00Z", "caption": "b",
             "likes": 7},
        {"account": "anna", "post_id": "1", "posted_at": "2024-03-01T10:00:00Z", "caption": "a", "likes": 5},
        {"account": "anna", "post_id": "0", "posted_at": "2024-02-01T10:00:00Z", "caption": "c", "likes": 3}]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    posts = load_posts("jsonl", path)
    assert posts["post_id"].tolist() == ["0", "1", "2"]  # sorted by account, then time
    assert posts["likes"].tolist() == [3, 5, 7] and posts.attrs["report"].source == "jsonl"
    settings = load_settings(None, ["data.source=jsonl", f"data.path={path}"])
    assert load_training_posts(settings, progress=False)["post_id"].tolist() == ["0", "1", "2"]
