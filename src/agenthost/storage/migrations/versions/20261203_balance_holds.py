"""balance holds of running requests, shared by every worker

Revision ID: 0005_balance_holds
Revises: 0004_integer_money
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_balance_holds"
down_revision = "0004_integer_money"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "balance_holds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_holds")),
    )
    op.create_index("ix_balance_holds_user_id", "balance_holds", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_balance_holds_user_id", table_name="balance_holds")
    op.drop_table("balance_holds")
