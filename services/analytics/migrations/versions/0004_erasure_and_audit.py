"""GDPR erasure record and the audit log.

- `erased_customers`: customers erased on `customer.erased`, and when. Their fact rows were
  moved to an anonymous id with the dimensions cleared (see `services.analytics.projection`).
- `audit_log`: the append-only audit trail (`GET /audit`): GDPR exports and admin changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from shared.audit import create_audit_table, drop_audit_table

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
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
    op.drop_table("erased_customers")
