"""users.oidc_subject: the identity provider's `sub` for a user, matched before email

Revision ID: 0011_oidc_subject
Revises: 0010_web_sessions
Create Date: 2026-12-04 03:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_oidc_subject"
down_revision = "0010_web_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("oidc_subject", sa.String(length=255), nullable=True))
    op.create_index(op.f("ix_users_oidc_subject"), "users", ["oidc_subject"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_oidc_subject"), table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("oidc_subject")
