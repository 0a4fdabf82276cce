"""The console's reads: the management report's scan of the period's published changes.

- `ix_outbox_type_time` on `outbox (type, time)`: the report counts the tier and churn-risk
  changes of one week or month, and the outbox keeps a year of every type
  (`outbox_retention_days`); by type alone (`ix_outbox_type_position`) it read the whole year.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from alembic import op

revision = "0010"
# Rechained at merge: another branch may add 0008/0009 after 0007.
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_type_time", "outbox", ["type", "time"])


def downgrade() -> None:
    op.drop_index("ix_outbox_type_time", table_name="outbox")
