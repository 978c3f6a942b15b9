"""money columns hold integers only, on SQLite too

SQLite's column types are affinities: an INTEGER column keeps a float (1e30) or a string
it is given. PostgreSQL's BIGINT/INTEGER refuse them already; on SQLite a CHECK on
typeof() makes the database refuse them the same way. Values stored before are made
integers first (a float is truncated; anything unreadable becomes 0 and is logged by
nobody: such a value was never a real amount).

Revision ID: 0004_integer_money
Revises: 0003_user_secrets
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0004_integer_money"
down_revision = "0003_user_secrets"
branch_labels = None
depends_on = None

_COLUMNS = {
    "balances": ["credits"],
    "transactions": [
        "credits",
        "input_tokens",
        "cache_write_tokens",
        "cache_read_tokens",
        "output_tokens",
        "reasoning_tokens",
    ],
}
_MOST = 9_223_372_036_854_775_807  # SQLite's largest integer


def _integer_check(column: str) -> str:
    return f"typeof({column}) = 'integer'"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in _COLUMNS.items():
        for column in columns:
            op.execute(
                f"UPDATE {table} SET {column} = CASE "
                f"WHEN typeof({column}) = 'real' AND abs({column}) < {_MOST} "
                f"THEN CAST({column} AS INTEGER) "
                f"WHEN typeof({column}) = 'real' AND {column} > 0 THEN {_MOST} "
                f"WHEN typeof({column}) = 'real' THEN -{_MOST} "
                f"ELSE 0 END WHERE typeof({column}) != 'integer'"
            )
        with op.batch_alter_table(table, recreate="always") as batch:
            for column in columns:
                batch.create_check_constraint(f"{column}_is_integer", _integer_check(column))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table, recreate="always") as batch:
            for column in columns:
                batch.drop_constraint(f"ck_{table}_{column}_is_integer", type_="check")
