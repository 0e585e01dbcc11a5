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
