"""key budgets, and usage rolled up per day, user, key, agent and model

Revision ID: 0006_key_budgets_rollups
Revises: 0005_balance_holds
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_key_budgets_rollups"
down_revision = "0005_balance_holds"
branch_labels = None
depends_on = None

_SUMS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def _id_column() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("max_credits", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("budget_period", sa.String(length=8), nullable=True))
    op.create_table(
        "usage_rollups",
        _id_column(),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _SUMS),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_rollups")),
        sa.UniqueConstraint(
            "day", "user_id", "api_key_id", "agent_id", "model", name="uq_usage_rollups_group"
        ),
    )
    op.create_index("ix_usage_rollups_key_day", "usage_rollups", ["api_key_id", "day"])
    op.create_index("ix_usage_rollups_day", "usage_rollups", ["day"])
    day = (
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        if op.get_bind().dialect.name == "postgresql"
        else "strftime('%Y-%m-%d', created_at)"
    )
    sums = ", ".join(f"SUM({name})" for name in _SUMS)
    op.execute(
        "INSERT INTO usage_rollups (day, user_id, api_key_id, agent_id, model, requests, "
        f"{', '.join(_SUMS)}, credits) "
        f"SELECT {day}, user_id, COALESCE(api_key_id, ''), COALESCE(agent_id, ''), "
        f"COALESCE(model, ''), COUNT(DISTINCT request_id), {sums}, -SUM(credits) "
        "FROM transactions WHERE kind = 'usage' "
        f"GROUP BY {day}, user_id, COALESCE(api_key_id, ''), COALESCE(agent_id, ''), "
        "COALESCE(model, '')"
    )


def downgrade() -> None:
    op.drop_index("ix_usage_rollups_day", table_name="usage_rollups")
    op.drop_index("ix_usage_rollups_key_day", table_name="usage_rollups")
    op.drop_table("usage_rollups")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("budget_period")
        batch.drop_column("max_credits")
