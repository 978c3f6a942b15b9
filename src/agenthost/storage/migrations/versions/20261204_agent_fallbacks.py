"""agents.fallbacks: models tried when the primary fails; transactions.provider: who served

Revision ID: 0014_agent_fallbacks
Revises: 0013_secret_kinds
Create Date: 2026-12-04 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_agent_fallbacks"
down_revision = "0013_secret_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("fallbacks", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("transactions") as batch:
        batch.add_column(sa.Column("provider", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("provider")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("fallbacks")
