"""agent_links: the sub-agents and handoff targets of each agent; responses.answered_by

Revision ID: 0015_agent_graph
Revises: 0016_web_round2
Create Date: 2026-12-04 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_agent_graph"
down_revision = "0016_web_round2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "agent_id",
            sa.String(length=32),
            sa.ForeignKey("agents.id", ondelete="CASCADE", name="fk_agent_links_agent"),
            nullable=False,
        ),
        sa.Column(
            "target_id",
            sa.String(length=32),
            sa.ForeignKey("agents.id", ondelete="CASCADE", name="fk_agent_links_target"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.UniqueConstraint("agent_id", "kind", "target_id", name="uq_agent_links_edge"),
    )
    op.create_index("ix_agent_links_agent_id", "agent_links", ["agent_id"])
    op.create_index("ix_agent_links_target_id", "agent_links", ["target_id"])
    with op.batch_alter_table("responses") as batch:
        batch.add_column(sa.Column("answered_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.drop_column("answered_by")
    op.drop_index("ix_agent_links_target_id", table_name="agent_links")
    op.drop_index("ix_agent_links_agent_id", table_name="agent_links")
    op.drop_table("agent_links")
