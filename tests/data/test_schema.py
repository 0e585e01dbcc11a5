from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from engage.data.schema import typed_posts, validate_posts


def _draft_rows() -> dict[str, list]:
    """A draft and two history posts as scoring builds them:
    times with zones, missing counts, a sponsored flag."""
    return {
        "account": [" anna.eats ", "anna.eats", "anna.eats"],
        "post_id": ["__history_0", "__history_1", "__draft__"],
        "posted_at": [datetime(2024, 5, 1, 18, tzinfo=UTC), pd.Timestamp("2024-05-02T10:00:00+02:00"),
                      datetime(2024, 5, 3, 9, 30, tzinfo=timezone(timedelta(hours=-5)))],
        "caption": ["Brunch #food ", "", "New menu! #ad"],
        "likes": [120, 98, 0], "comments": [4, None, None], "followers": [5400, 5400, None],
        "impressions": [None, 2100, None], "sponsored": [None, False, True],
    }


def test_typed_posts_is_what_validate_posts_makes_of_the_same_rows():
    rows = _draft_rows()
    typed = typed_posts(rows)
    pd.testing.assert_frame_equal(typed, validate_posts(pd.DataFrame(rows), file="<draft>"))
    assert typed["account"].tolist() == ["anna.eats"] * 3
    assert typed["posted_at"].iloc[2] == pd.Timestamp("2024-05-03T14:30:00Z")
    assert typed["comments"].isna().tolist() == [False, True, True]
    assert typed["reach"].isna().all() and typed["image"].tolist() == [None] * 3


def test_typed_posts_refuses_repeated_post_ids():
    rows = _draft_rows()
    rows["post_id"][1] = "__history_0"
    with pytest.raises(ValueError, match="post ids must be unique"):
        typed_posts(rows)
