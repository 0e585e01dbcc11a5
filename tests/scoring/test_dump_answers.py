"""What a new user meets on the real Instaloader dump (../shared/data/real/celeb_dump_200, beside the
checkout; skipped where it is absent): answers inside what each account's own posts support, an early draft
at the account's level, a small unknown account scored from accounts of its size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engage.config import load_settings
from engage.model.bundle import EngageModel
from engage.model.draft import Draft
from engage.model.targets import COUNT_TARGETS
from engage.scoring.scorer import Scorer

DUMP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real" / "celeb_dump_200"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not DUMP.is_dir(), reason=f"{DUMP} is not here")]


@pytest.fixture(scope="module")
def dump_model(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    from engage.training import train

    work = tmp_path_factory.mktemp("dump")
    settings = load_settings(
        None,
        [
            "data.source=instaloader",
            f"data.path={DUMP}",
            f"features.cache_dir={work / 'cache'}",
            f"tracking.uri=sqlite:///{work / 'mlflow.db'}",
            "image.embedder=efficientnet",
        ],
    )
    train(settings, export_dir=str(work / "bundle"), progress=False)
    return Scorer(EngageModel.load(work / "bundle"))


def test_every_dump_accounts_expected_counts_lie_within_its_own_posts(dump_model):
    ctx = dump_model.context_posts
    for account, own in ctx.groupby("account"):
        scored = dump_model.score(
            Draft(
                account=account,
                caption="New post",
                posted_at=(own["posted_at"].max() + pd.Timedelta(days=1)).isoformat(),
            )
        )
        for target in COUNT_TARGETS:
            values = own[target].dropna().astype(float) if target in own else pd.Series(dtype=float)
            if scored.count(target) is None or len(values) < 3:
                continue
            assert values.min() - 0.01 <= scored.count(target).expected <= values.max() + 0.01, (
                account, target)


def test_an_early_natgeo_draft_is_at_natgeos_level_without_a_false_unknown_account(dump_model):
    ctx = dump_model.context_posts
    first = ctx.loc[ctx["account"] == "natgeo", "posted_at"].min()
    before = dump_model.score(
        Draft(account="natgeo", caption="Into the wild", posted_at=(first - pd.Timedelta(days=1)).isoformat())
    )
    after = dump_model.score(
        Draft(account="natgeo", caption="Into the wild", posted_at=(first + pd.Timedelta(days=1)).isoformat())
    )
    assert "unknown_account" not in [f.code for f in before.flags]
    assert "before_known_history" in [f.code for f in before.flags]
    own = ctx.loc[ctx["account"] == "natgeo", "likes"].astype(float)
    assert own.min() <= before.likes.expected <= own.max()
    assert 0.5 < before.likes.expected / after.likes.expected < 2  # was 12x


def test_a_2400_follower_unknown_account_is_not_given_12_times_its_followers(dump_model):
    scored = dump_model.score(
        Draft(account="new_small_account", caption="hello", followers=2400, posted_at="2022-06-01T10:00:00Z")
    )
    flags = {f.code: f.message for f in scored.flags}
    assert (
        "2,400 followers is fewer than any account the model was trained on"
        in flags["followers_outside_training"]
    )
    assert scored.likes.expected < 2400
    assert (
        np.isfinite(scored.comments.high)
        and scored.comments.high > scored.comments.expected
    )
