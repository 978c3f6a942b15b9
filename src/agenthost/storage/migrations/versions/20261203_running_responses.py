"""index running responses by status and last renewal, for the lease sweeper

Revision ID: 0008_running_responses
Revises: 0007_audit_log
Create Date: 2026-12-03 18:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0008_running_responses"
down_revision = "0007_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_responses_status_updated", "responses", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_status_updated", table_name="responses")
