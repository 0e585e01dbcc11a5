"""The outcome store: scores, published posts and their counts at an age.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

COUNTS = ("likes", "comments", "impressions", "reach", "saves", "shares", "profile_visits", "follows",
          "link_clicks")


def upgrade() -> None:
    op.create_table(
        "scores",
        sa.Column("score_id", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("compare_id", sa.String(40), nullable=True),
        sa.Column("draft_index", sa.Integer, nullable=True),
        sa.Column("rank", sa.Integer, nullable=True),
        sa.Column("goal", sa.String(32), nullable=True),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caption", sa.Text, nullable=False),
        sa.Column("caption_hash", sa.String(64), nullable=False),
        sa.Column("photo_sha256", sa.String(64), nullable=True),
        sa.Column("photo_dhash", sa.String(16), nullable=True),
        sa.Column("photo", sa.LargeBinary, nullable=True),
        sa.Column("followers", sa.BigInteger, nullable=True),
        sa.Column("sponsored", sa.Boolean, nullable=True),
        sa.Column("prediction", sa.JSON, nullable=False),
        sa.Column("features", sa.JSON, nullable=True),
    )
    op.create_index("ix_scores_account", "scores", ["account"])
    op.create_index("ix_scores_compare_id", "scores", ["compare_id"])
    op.create_index("ix_scores_caption_hash", "scores", ["caption_hash"])
    op.create_index("ix_scores_photo_sha256", "scores", ["photo_sha256"])
    op.create_table(
        "published",
        sa.Column("score_id", sa.String(40), sa.ForeignKey("scores.score_id"), primary_key=True),
        sa.Column("post_id", sa.String(200), nullable=False, unique=True),
        sa.Column("permalink", sa.String(500), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outcomes",
        sa.Column("outcome_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("score_id", sa.String(40), sa.ForeignKey("published.score_id"), nullable=False),
        sa.Column("age_hours", sa.Float, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in COUNTS),
        sa.UniqueConstraint("score_id", "age_hours", name="one_record_per_age"),
    )
    op.create_index("ix_outcomes_score_id", "outcomes", ["score_id"])


def downgrade() -> None:
    op.drop_table("outcomes")
    op.drop_table("published")
    op.drop_table("scores")
