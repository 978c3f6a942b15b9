"""stream events of background responses, for resuming their streams

Revision ID: 0009_response_events
Revises: 0008_running_responses
Create Date: 2026-12-03 23:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_response_events"
down_revision = "0008_running_responses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_events",
        sa.Column("response_id", sa.String(length=64), nullable=False),
        sa.Column("first_sequence", sa.Integer(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_response_events_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("response_id", "first_sequence", name=op.f("pk_response_events")),
    )


def downgrade() -> None:
    op.drop_table("response_events")
