"""user_secrets.kind: a user's secrets for tools, and their keys for user-provided providers

Revision ID: 0013_secret_kinds
Revises: 0012_groups
Create Date: 2026-12-04 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_secret_kinds"
down_revision = "0012_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_secrets") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="secret")
        )
        batch.drop_constraint("uq_user_secrets_user_name", type_="unique")
        batch.create_unique_constraint(
            "uq_user_secrets_user_kind_name", ["user_id", "kind", "name"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM user_secrets WHERE kind <> 'secret'")
    with op.batch_alter_table("user_secrets") as batch:
        batch.drop_constraint("uq_user_secrets_user_kind_name", type_="unique")
        batch.create_unique_constraint("uq_user_secrets_user_name", ["user_id", "name"])
        batch.drop_column("kind")
