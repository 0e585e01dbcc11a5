"""Batch scoring (`python -m engage.batch`): one output row per draft, bad rows reported by number."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engage.batch import main
from engage.model.bundle import EngageModel
from engage.model.draft import Draft
from engage.scoring.scorer import Scorer
from engage.scoring.table import OUTPUT_COLUMNS


@pytest.mark.slow
def test_batch_scores_every_draft_like_the_api_and_reports_bad_rows_by_number(
    trained, draft_table, tmp_path, capsys):
    _, bundle = trained
    drafts = draft_table(tmp_path)
    drafts.to_csv(tmp_path / "drafts.csv", index=False)
    assert main([str(tmp_path / "drafts.csv"), str(tmp_path / "scores.csv"), "--model", str(bundle)]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv", keep_default_na=False, na_values=[""])
    assert list(scores.columns) == OUTPUT_COLUMNS
    assert scores["row"].tolist() == [1, 2, 3, 4]
    assert scores["error"].isna().tolist() == [True, True, False, False]
    assert "missing.jpg cannot be read" in scores["error"][2]
    assert "account" in scores["error"][3]
    assert np.isnan(scores["likes_expected"][2])
    err = capsys.readouterr().err
    assert "row 3: " in err and "row 4: " in err

    # The same numbers as scoring the draft directly (the API's code path).
    model = EngageModel.load(bundle)
    direct = Scorer(model).score(Draft(account=drafts["account"][0], caption=drafts["caption"][0],
                                       posted_at="2024-06-01T09:00:00Z", followers=5000,
                                       image=(tmp_path / "photos" / "draft.jpg").read_bytes()))
    assert scores["likes_expected"][0] == pytest.approx(direct.likes.expected)
    assert scores["authenticity_risk"][0] == pytest.approx(direct.authenticity_risk)
    assert "disclosure_tags" in scores["flags"][1]


def test_ray_is_needed_only_by_the_ray_engine(smoke_settings):
    """engage, training and batch scoring import without
    Ray; asking for the Ray engine says what to install."""
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import engage, engage.engines, engage.training, engage.batch\n"
        "from engage.engines import open_engine\n"
        "from engage.errors import ConfigError\n"
        "s = engage.load_settings(None, ['runtime.engine=ray'])\n"
        "try:\n"
        "    with open_engine(s): pass\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert 'runtime.engine=ray needs Ray' in out and 'pip install -e ".[ray]"' in out
