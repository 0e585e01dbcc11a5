"""A user's own spreadsheet: column mapping, single-account
tables, made post ids, and the unmappable-table error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engage.config import load_settings
from engage.data import load_posts
from engage.data.table import made_post_ids, suggest_mapping
from engage.errors import DataError
from engage.training import load_training_posts

SPREADSHEET = ("Date,Caption,Likes,Comments\n"
               "2024-05-01 18:30,Sourdough crumb shot #bread,120,8\n"
               "2024-05-02 09:00,\"Lemon tart, finally\",75,3\n"
               "2024-05-03 12:15,,48,0\n")


def _sheet(tmp_path: Path, text: str = SPREADSHEET, name: str = "anna.bakes.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_spreadsheet_loads_with_one_mapping_option_from_the_command_line(tmp_path: Path) -> None:
    path = _sheet(tmp_path)
    settings = load_settings(None,
                             ["data.source=table", f"data.path={path}", "data.columns={Date: posted_at}"])
    assert settings.data.columns == {"Date": "posted_at"}
    posts = load_training_posts(settings)
    assert list(posts["likes"]) == [120, 75, 48]
    assert list(posts["comments"]) == [8, 3, 0]
    assert list(posts["caption"]) == ["Sourdough crumb shot #bread", "Lemon tart, finally", ""]
    assert posts["posted_at"].iloc[0] == pd.Timestamp("2024-05-01 18:30", tz="UTC")
    assert set(posts["account"]) == {"anna.bakes"}  # the file's name, said so
    report = posts.attrs["report"]
    assert any("no post ids: 3 made" in note for note in report.notes)
    assert any("file's name" in note for note in report.notes)
    assert any("Likes -> likes" in note for note in report.notes)
    assert posts["post_id"].str.fullmatch(r"t[0-9a-f]{16}").all()


def test_mapping_from_yaml_and_data_account_name_the_account(tmp_path: Path) -> None:
    path = _sheet(tmp_path, "When,Text,Hearts\n2024-05-01T10:00:00Z,hello,5\n", name="export.csv")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: table\n  path: {path}\n  account: ben.cooks\n"
                      "  columns: {When: posted_at, Text: caption, Hearts: likes}\n", encoding="utf-8")
    posts = load_training_posts(load_settings(config))
    assert posts["account"].tolist() == ["ben.cooks"]
    assert posts["likes"].tolist() == [5]
    assert posts["caption"].tolist() == ["hello"]
    assert any("data.account" in note for note in posts.attrs["report"].notes)


def test_made_post_ids_are_stable_and_tell_apart_posts_at_one_instant() -> None:
    frame = pd.DataFrame({"account": ["a", "a", "a"], "posted_at": ["2024-05-01", "2024-05-01", "2024-05-01"],
                          "caption": ["one", "two", "one"]})
    ids = made_post_ids(frame).tolist()
    assert ids[0] == ids[2] != ids[1]
    assert ids == made_post_ids(frame.copy()).tolist()


def test_two_posts_with_the_same_time_and_caption_are_a_duplicate_error(tmp_path: Path) -> None:
    path = _sheet(tmp_path, "Date,Caption,Likes\n2024-05-01,same,1\n2024-05-01,same,2\n")
    with pytest.raises(DataError, match="post_id"):
        load_posts("table", path, columns={"Date": "posted_at"})


def test_unmappable_table_lists_its_columns_and_a_mapping_that_would_work(tmp_path: Path) -> None:
    path = _sheet(tmp_path, "Date,Caption,Hearts,Comments\n2024-05-01,x,1,0\n")
    with pytest.raises(DataError) as caught:
        load_posts("table", path)
    message = str(caught.value)
    assert "missing required column(s) posted_at, likes" in message
    assert "the table's columns are Date, Caption, Hearts, Comments" in message
    assert 'data.columns="{Date: posted_at, Hearts: likes}"' in message
    assert str(path) in message


def test_a_column_nothing_resembles_is_named_as_one_to_add(tmp_path: Path) -> None:
    path = _sheet(tmp_path, "Date,Caption\n2024-05-01,x\n")
    with pytest.raises(DataError, match=r"no column looks like likes: add it to the table"):
        load_posts("table", path)


def test_mapping_errors_name_the_problem(tmp_path: Path) -> None:
    path = _sheet(tmp_path)
    with pytest.raises(DataError, match="'Datum'.*its columns are 'Date'"):
        load_posts("table", path, columns={"Datum": "posted_at"})
    with pytest.raises(DataError, match="'when', which engage does not know"):
        load_posts("table", path, columns={"Date": "when"})
    with pytest.raises(DataError, match="several columns to likes"):
        load_posts("table", path, columns={"Likes": "likes", "Comments": "likes", "Date": "posted_at"})
    with pytest.raises(DataError, match="has an account column"):
        load_posts("table", _sheet(tmp_path, "account,posted_at,likes\na,2024-05-01,1\n", "t.csv"),
                   account="b")


def test_suggestions_never_reuse_a_canonical_name_the_table_has() -> None:
    assert suggest_mapping(["likes", "Hearts", "Username",
                            "Timestamp"]) == {"Username": "account", "Timestamp": "posted_at"}


@pytest.mark.slow
def test_the_spreadsheet_trains_with_one_mapping_option(tmp_path: Path) -> None:
    import numpy as np

    from engage.config import PROJECT_ROOT
    from engage.training import train

    rng = np.random.default_rng(3)
    words = ["sourdough", "lemon tart", "croissants", "rye loaf", "focaccia", "cinnamon rolls"]
    rows = ["Date,Caption,Likes,Comments"]
    for day in range(48):
        caption = f"{words[day % len(words)]} day {day} " + "#bread " * int(rng.integers(0, 6))
        rows.append(
            f"2024-03-{1 + day % 28:02d} {8 + day % 12}:00,{caption.strip()},{int(rng.integers(40, 200))},"
                    f"{int(rng.integers(0, 20))}")
    rows = [rows[0]] + [r.replace("2024-03", "2024-04" if i >= 28 else "2024-03") for i,
                        r in enumerate(rows[1:])]
    path = _sheet(tmp_path, "\n".join(rows) + "\n", name="anna.bakes.csv")
    settings = load_settings(PROJECT_ROOT / "configs" / "smoke.yaml", [
        "data.source=table", f"data.path={path}", "data.columns={Date: posted_at}",
        f"features.cache_dir={tmp_path / 'cache'}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        "image.embedder=efficientnet", "train.targets=[likes, comments]"])
    result = train(settings, progress=False)
    assert result.model_version == "1" and result.alias == "champion"
    assert result.metrics["n_accounts"] == 1.0
    assert result.metrics["n_train"] + result.metrics["n_test"] == 48.0
