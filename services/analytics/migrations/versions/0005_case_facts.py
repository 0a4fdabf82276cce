"""Case facts of the service desk: one row per case of any type (from `case.*` events), for
the case statistics by type (volumes, SLA compliance, p50/p90, satisfaction rating).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_facts",
        sa.Column("case_id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("subtype", sa.Text()),
        sa.Column("channel", sa.Text()),
        sa.Column("severity", sa.Text()),
        sa.Column("status", sa.Text()),
        sa.Column("status_at", TS),
        sa.Column("received_at", TS),
        sa.Column("first_response_seconds", sa.Integer()),
        sa.Column("first_response_met", sa.Boolean()),
        sa.Column("first_response_breached", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("resolved_at", TS),
        sa.Column("resolution_seconds", sa.Integer()),
        sa.Column("resolution_met", sa.Boolean()),
        sa.Column("resolution_breached", sa.Boolean(), nullable=False, server_default="false"),
        sa.Column("outcome", sa.Text()),
        sa.Column("rating", sa.SmallInteger()),
        sa.Column("rated_at", TS),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_facts"),
    )
    op.create_index("ix_case_facts_customer_id", "case_facts", ["customer_id"])
    op.create_index("ix_case_facts_received_at", "case_facts", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_case_facts_received_at", "case_facts")
    op.drop_index("ix_case_facts_customer_id", "case_facts")
    op.drop_table("case_facts")
