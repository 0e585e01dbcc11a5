"""Tables of drafts (engage/scoring/table.py): read through the one table reader, refused by name."""

from __future__ import annotations

import pandas as pd
import pytest

from engage.errors import DataError
from engage.scoring.table import read_drafts


def test_read_drafts_names_the_file_and_the_unknown_column(tmp_path):
    path = tmp_path / "drafts.csv"
    pd.DataFrame({"account": ["a"], "captoin": ["typo"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"drafts.csv: has unknown column\(s\) captoin"):
        read_drafts(path)
    with pytest.raises(DataError, match=r"drafts.json: has an unknown extension; use .csv, .tsv or .parquet"):
        (tmp_path / "drafts.json").write_text("{}")
        read_drafts(tmp_path / "drafts.json")


def test_read_drafts_keeps_text_columns_as_text_and_numbers_as_numbers(tmp_path):
    path = tmp_path / "drafts.csv"
    path.write_text("account,caption,followers,image\n007,,1200.0,photos/1.jpg\nanna,Hi,,\n")
    drafts = read_drafts(path)
    assert drafts["row"].tolist() == [1, 2] and drafts["account"].tolist() == ["007", "anna"]
    assert drafts["caption"].isna().tolist() == [True, False]  # an empty cell is missing, not ''
    assert drafts["followers"].tolist()[0] == 1200.0 and pd.isna(drafts["followers"][1])
    with pytest.raises(DataError,
                       match=r"nothing.csv: does not exist; pass a Parquet or CSV table of drafts"):
        read_drafts(tmp_path / "nothing.csv")
