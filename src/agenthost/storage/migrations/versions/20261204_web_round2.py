"""users.deleted_at: a deleted user's row stays (the ledger refers to it), marked deleted

Revision ID: 0016_web_round2
Revises: 0014_agent_fallbacks
Create Date: 2026-12-04 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_web_round2"
down_revision = "0014_agent_fallbacks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("deleted_at")
