"""The settings tree: YAML files set any subset of keys, dotted overrides set one key, typos are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from engage.config import PROJECT_ROOT, Settings, flat_params, load_settings, parse_override, settings_to_yaml
from engage.errors import ConfigError


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_the_defaults() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert (settings.data.source, settings.train.lightgbm.num_leaves,
            settings.features.history_posts) == ("demo", 15, 24)


def test_partial_yaml_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "data:\n  source: instaloader\n  path: "
                 "dumps/anna\ntrain:\n  lightgbm:\n    learning_rate: 0.1\n")
    settings = load_settings(path)
    assert (settings.data.source, settings.data.path) == ("instaloader", "dumps/anna")
    assert settings.train.lightgbm.learning_rate == 0.1
    assert settings.train.lightgbm.num_leaves == 15  # untouched sibling keeps its default
    assert settings.data.demo.n_accounts == 42  # untouched subsection too
    assert settings.image.embedder == "auto"


def test_empty_yaml_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings(_yaml(tmp_path, "# nothing set\n")) == Settings()


def test_dotted_override_sets_one_nested_key(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "train:\n  lightgbm:\n    num_leaves: 31\n    learning_rate: 0.1\n")
    settings = load_settings(path,
                             ["train.lightgbm.num_leaves=7", "data.images_dir=photos", "data.path=null"])
    assert settings.train.lightgbm.num_leaves == 7  # the override wins over the file
    assert settings.train.lightgbm.learning_rate == 0.1  # the file's other key stays
    assert settings.data.images_dir == "photos"
    assert settings.data.path is None


def test_a_partial_level_keeps_the_levels_own_defaults(tmp_path: Path) -> None:
    # The level's defaults (600 trees of 7 leaves, 50 posts a leaf) differ from LightGBMSettings' generic
    # ones: setting one key of it, by override or in a file, must not reset the others to the generic values.
    level = load_settings(None, ["train.level.n_jobs=1"]).train.level
    assert (level.n_jobs, level.n_estimators, level.num_leaves, level.min_child_samples) == (1, 600, 7, 50)
    level = load_settings(_yaml(tmp_path, "train:\n  level:\n    n_estimators: 40\n")).train.level
    assert (level.n_estimators, level.num_leaves, level.min_child_samples, level.n_jobs) == (40, 7, 50, 2)
    assert load_settings(None, ["train.lightgbm.n_jobs=1"]).train.lightgbm.num_leaves == 15


def test_override_values_are_read_as_yaml() -> None:
    assert parse_override("features.duplicate_image_cosine=0.9") == ("features.duplicate_image_cosine", 0.9)
    assert parse_override("train.export_dir=models/engage") == ("train.export_dir", "models/engage")
    assert parse_override("image.clip_pretrained=null") == ("image.clip_pretrained", None)


def test_unknown_yaml_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "train:\n  lightgbm:\n    num_leafs: 7\n")
    with pytest.raises(ConfigError, match=r"run\.yaml is invalid: train\.lightgbm\.num_leafs: Extra inputs"):
        load_settings(path)


def test_unknown_override_key_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"data\.sorce"):
        load_settings(None, ["data.sorce=table"])


def test_invalid_value_is_an_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError,
                       match=r"train\.lightgbm\.num_leaves: Input should be greater than or equal to 2"):
        load_settings(None, ["train.lightgbm.num_leaves=1"])
    with pytest.raises(ConfigError, match=r"data\.source"):
        load_settings(_yaml(tmp_path, "data:\n  source: [excel]\n"))


def test_override_without_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"'train\.lightgbm\.num_leaves' must look like section\.key=value"):
        load_settings(None, ["train.lightgbm.num_leaves"])


def test_override_below_a_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"override 'data\.source\.x': 'source' is a value, not a section"):
        load_settings(None, ["data.source=table", "data.source.x=1"])


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_invalid_yaml_and_non_mapping_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"is not valid YAML"):
        load_settings(_yaml(tmp_path, "data: [unclosed\n"))
    with pytest.raises(ConfigError, match=r"must hold a mapping of sections, got list"):
        load_settings(_yaml(tmp_path, "- data\n"))


def test_resolved_settings_round_trip_through_yaml(tmp_path: Path) -> None:
    settings = load_settings(None, ["train.lightgbm.num_leaves=7", "data.source=table"])
    again = load_settings(_yaml(tmp_path, settings_to_yaml(settings)))
    assert again == settings
    flat = flat_params(settings)
    assert (flat["train.lightgbm.num_leaves"], flat["data.source"]) == (7, "table")


@pytest.mark.parametrize("name", ["default.yaml", "smoke.yaml"])
def test_shipped_configs_load(name: str) -> None:
    settings = load_settings(PROJECT_ROOT / "configs" / name)
    assert settings.data.source == "demo"
