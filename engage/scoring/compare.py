"""Ranking drafts: several drafts of one account scored,
ranked by a goal count, the best hour for the top one.

One implementation for every scorer: `Scorer.compare` calls it with itself, the HTTP API's `/v1/compare` with
whatever `ScoringModel` it serves (a stand-in in tests), so the ranking, the differences and the goal check
are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from engage.errors import DataError, DraftError, EngageError, ModelError
from engage.model.draft import Draft
from engage.model.targets import COUNT_TARGETS
from engage.scoring.answers import Answer, Comparison, missing_goal, rank
from engage.scoring.contract import ScoringModel
from engage.zones import DEFAULT_TIME_ZONE


class DraftOfManyError(EngageError, ValueError):
    """One draft of a comparison cannot be scored: `index` is its position, `error` what is wrong with it (a
    `DraftError` naming the draft's field, or a `DataError` from its photo)."""

    def __init__(self, index: int, error: DraftError | DataError):
        self.index = index
        self.error = error
        super().__init__(f"draft {index}: {error}")


def compare(model: ScoringModel, drafts: Sequence[Draft], *, goal: str = "likes", best_hour: bool = False,
            time_zone: str = DEFAULT_TIME_ZONE) -> Comparison:
    """`drafts` (of one account) scored and ranked by their expected `goal` count, best first (ties keep the
    order given), each with what it makes of the goal (and of likes) against the first draft and the top one;
    with `best_hour`, the hour of the next 7 days in `time_zone`
    with the most expected `goal` for the top draft.

    A goal the model does not predict is a ModelError naming the goals it has (checked before any scoring);
    a draft that cannot be scored is a `DraftOfManyError` with its position."""
    if not drafts:
        raise ValueError("compare needs at least one draft")
    have = [name for name in COUNT_TARGETS if name in model.models]
    if goal not in have:
        raise ModelError(missing_goal(goal, have))
    answers: list[Answer] = []
    for index, draft in enumerate(drafts):
        try:
            answers.append(model.score(draft))
        except (DraftError, DataError) as e:
            raise DraftOfManyError(index, e) from e
    ranked = rank(answers, goal)
    hour = (model.best_hour(drafts[ranked[0].index], days=7, goal=goal, time_zone=time_zone)
            if best_hour else None)
    return Comparison(account=drafts[0].account, goal=goal, drafts=ranked, risk_label=answers[0].risk_label,
                      best_hour=hour)
