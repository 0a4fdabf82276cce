"""Revisits of service-desk cases, and the timeline's records from other services.

`followups.case_id` links a revisit follow-up to the case it follows up (created from
`case.resolved`), `followups.revisit_outcome` holds what completing it found. The
`timeline_records` table keeps cases (from kehu.complaints), needs and consent changes (from
kehu.customers) so the customer timeline shows them next to interactions and purchases: codes,
states and times only, no personal text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("followups", sa.Column("case_id", UUID(as_uuid=True)))
    op.add_column("followups", sa.Column("revisit_outcome", sa.Text()))
    op.create_index(
        "ix_followups_case_id",
        "followups",
        ["case_id"],
        postgresql_where=sa.text("case_id IS NOT NULL"),
    )
    op.create_table(
        "timeline_records",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSONB(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "id", name="pk_timeline_records"),
    )
    op.create_index("ix_timeline_records_customer_at", "timeline_records", ["customer_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_timeline_records_customer_at", "timeline_records")
    op.drop_table("timeline_records")
    op.drop_index("ix_followups_case_id", "followups")
    op.drop_column("followups", "revisit_outcome")
    op.drop_column("followups", "case_id")
