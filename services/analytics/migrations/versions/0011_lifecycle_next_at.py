"""The instant from which time alone can change a customer's lifecycle stage or churn risk.

- `customer_facts.lifecycle_next_at`: the steady re-rank computes lifecycle and churn risk only
  for customers past it (or whose facts changed) instead of for everyone. Null (every existing
  row, and a rebuilt one) means "not known": the next re-rank computes it. Not indexed, so
  setting it keeps the re-rank's row updates HOT.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "customer_facts", sa.Column("lifecycle_next_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("customer_facts", "lifecycle_next_at")
