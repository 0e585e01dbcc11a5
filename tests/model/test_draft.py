"""The draft types (engage/model/draft.py): the insight counts come from the one count list."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engage.data.schema import INSIGHT_COUNTS
from engage.model.draft import HistoryPost, InsightCounts


def test_insight_counts_has_one_bounded_optional_field_per_count_of_the_schema():
    assert tuple(InsightCounts.model_fields) == INSIGHT_COUNTS
    post = HistoryPost(posted_at="2024-01-01T00:00:00Z", likes=3, saves=4, link_clicks=0)
    assert (post.saves, post.link_clicks, post.reach) == (4, 0, None)
    with pytest.raises(ValidationError, match=r"saves\n  Input should be greater than or equal to 0"):
        HistoryPost(posted_at="2024-01-01T00:00:00Z", likes=3, saves=-1)
    with pytest.raises(ValidationError, match=r"reach\n  Input should be less than or equal to 10000000000"):
        HistoryPost(posted_at="2024-01-01T00:00:00Z", likes=3, reach=10**11)


def test_a_record_becomes_a_draft_with_empty_cells_left_out_and_the_image_read_by_the_caller():
    import math

    import pandas as pd

    from engage.model.draft import Draft

    record = {"row": 3, "account": "anna", "caption": "Hi", "posted_at": "2030-01-02 09:30",
              "followers": math.nan,
              "sponsored": None, "image": "photos/a.jpg"}
    draft = Draft.from_record(record, read_image=lambda name: name.encode()[::-1])
    assert draft.image == b"gpj.a/sotohp" and draft.followers is None and draft.sponsored is None
    assert draft.posted_at == pd.Timestamp("2030-01-02T09:30:00Z").to_pydatetime()
    no_time = Draft.from_record({"account": "anna", "posted_at": pd.NaT, "image": None})
    assert no_time.posted_at is None and no_time.image is None
    with pytest.raises(ValidationError, match=r"captoin\n  Extra inputs are not permitted"):
        Draft.from_record({"account": "anna", "captoin": "typo"})
    with pytest.raises(ValidationError, match=r"posted_at\n  Input should be a valid datetime"):
        Draft.from_record({"account": "anna", "posted_at": "next tuesday-ish"})
    with pytest.raises(TypeError, match="needs read_image"):
        Draft.from_record({"account": "anna", "image": "a.jpg"})
