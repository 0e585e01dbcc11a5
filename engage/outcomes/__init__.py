"""Learning from what was published: the outcome store, accuracy against outcomes, imports and retraining.

    store.py      OutcomeStore: scores (prediction, model, draft) and outcomes (counts at an age) in SQL
    tables.py     the tables (SQLAlchemy Core); migrations/ keeps them (Alembic)
    accuracy.py   how right engage was: MAE, interval coverage, ranking, next to the trailing average
    importer.py   outcomes from a later Instaloader dump or insights export, matched to scores
    drift.py      recent drafts against the training posts, column by column (scipy)
    retrain.py    recorded posts into training data; the promotion check on posts neither model trained on
    __main__.py   python -m engage.outcomes import | accuracy | upgrade
"""

from engage.outcomes.store import (
    OutcomeError,
    OutcomeRecord,
    OutcomeStore,
    ScoreRecord,
    default_url,
    post_id_of,
)

__all__ = ["OutcomeError", "OutcomeRecord", "OutcomeStore", "ScoreRecord", "default_url", "post_id_of"]
