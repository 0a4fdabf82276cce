"""Staff and service quality: follow-ups, who logged an interaction, who handles a complaint.

- `followups`: follow-ups from `followup.scheduled|completed|overdue|cancelled`.
- `interactions.agent_id`: the agent who logged the contact.
- `complaints.assignee|team|assigned_at`: from `complaint.assigned` (latest wins).
- `agent_teams`: each agent's team, from the latest complaint assignment naming both.
- `customer_facts` fillfactor 70: the re-rank rewrites rows in place (HOT updates).
- `recompute_state.last_full_at`: re-ranks between full ones recompute only changed facts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "followups",
        sa.Column("followup_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text),
        sa.Column("assignee_id", sa.Text),
        sa.Column("due_at", TS),
        sa.Column("scheduled_at", TS),
        sa.Column("completed_at", TS),
        sa.Column("overdue_at", TS),
        sa.Column("cancelled_at", TS),
        sa.Column("interaction_id", UUID(as_uuid=True)),
    )
    op.create_index("ix_followups_customer_id", "followups", ["customer_id"])
    op.create_index("ix_followups_completed_at", "followups", ["completed_at"])
    op.add_column("interactions", sa.Column("agent_id", sa.Text))
    op.add_column("complaints", sa.Column("assignee", sa.Text))
    op.add_column("complaints", sa.Column("team", sa.Text))
    op.add_column("complaints", sa.Column("assigned_at", TS))
    op.create_table(
        "agent_teams",
        sa.Column("agent_id", sa.Text, primary_key=True),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
    )
    op.execute("ALTER TABLE customer_facts SET (fillfactor = 70)")
    op.add_column("recompute_state", sa.Column("last_full_at", TS))


def downgrade() -> None:
    op.drop_column("recompute_state", "last_full_at")
    op.execute("ALTER TABLE customer_facts RESET (fillfactor)")
    op.drop_table("agent_teams")
    op.drop_column("complaints", "assigned_at")
    op.drop_column("complaints", "team")
    op.drop_column("complaints", "assignee")
    op.drop_column("interactions", "agent_id")
    op.drop_index("ix_followups_completed_at", "followups")
    op.drop_index("ix_followups_customer_id", "followups")
    op.drop_table("followups")
