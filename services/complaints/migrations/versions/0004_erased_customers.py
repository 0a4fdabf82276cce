"""Erased customers, so a complaint filed after the erasure stores no personal data.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_customers",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_erased_customers"),
    )


def downgrade() -> None:
    op.drop_table("erased_customers")
