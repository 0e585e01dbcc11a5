"""The outcome store's tables (SQLAlchemy Core), as of the newest migration in migrations/versions/.

Changing a table means a new migration there as well (`python -m engage.outcomes revision -m ...` writes
the file; docs/outcomes.md); the store upgrades itself to the newest one when it opens.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from engage.data.schema import OUTCOME_COUNTS

metadata = MetaData()

#: One row per scored draft: what engage predicted, with what model, from what.
scores = Table(
    "scores", metadata,
    Column("score_id", String(40), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("account", String(100), nullable=False, index=True),
    Column("compare_id", String(40), nullable=True, index=True),  # the drafts of one /v1/compare share it
    Column("draft_index", Integer, nullable=True),  # its place in the comparison
    Column("rank", Integer, nullable=True),  # 1 = ranked first
    Column("goal", String(32), nullable=True),  # what the comparison ranked by
    Column("model_version", String(200), nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("planned_at", DateTime(timezone=True), nullable=True),  # the draft's posted_at, when it had one
    Column("caption", Text, nullable=False),
    Column("caption_hash", String(64), nullable=False, index=True),
    Column("photo_sha256", String(64), nullable=True, index=True),
    Column("photo_dhash", String(16), nullable=True),  # perceptual: survives Instagram's recompression
    Column("photo", LargeBinary, nullable=True),  # only with serve.py --outcomes-photos
    Column("followers", BigInteger, nullable=True),
    Column("sponsored", Boolean, nullable=True),
    Column("prediction", JSON, nullable=False),  # target -> {expected, low, high}; authenticity_risk
    # the model's feature row for the draft (null from stand-in models)
    Column("features", JSON, nullable=True),
)

#: A scored draft that was published: one post per score, one score per post.
published = Table(
    "published", metadata,
    Column("score_id", String(40), ForeignKey("scores.score_id"), primary_key=True),
    Column("post_id", String(200), nullable=False, unique=True),
    Column("permalink", String(500), nullable=True),
    Column("posted_at", DateTime(timezone=True), nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
)

#: The counts of a published post at a stated age (24 h and 7 days are two rows).
outcomes = Table(
    "outcomes", metadata,
    Column("outcome_id", Integer, primary_key=True, autoincrement=True),
    Column("score_id", String(40), ForeignKey("published.score_id"), nullable=False, index=True),
    Column("age_hours", Float, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("source", String(40), nullable=False),  # api, or import:<source>
    *(Column(name, BigInteger, nullable=True) for name in OUTCOME_COUNTS),
    UniqueConstraint("score_id", "age_hours", name="one_record_per_age"),
)
