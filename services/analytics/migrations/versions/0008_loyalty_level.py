"""The loyalty membership level on the per-customer facts (`loyalty.level_changed`).

- `customer_facts.loyalty_level`: the level's code as loyalty published it (latest wins).
- `customer_facts.loyalty_level_at`: when loyalty changed it (the event's `occurred_at`), so an
  older change arriving late never overwrites a newer one.

Levels changed before this revision arrive without a rebuild: the catch-up reads loyalty's
`GET /events` feed from its start the first time (no saved position for it yet).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customer_facts", sa.Column("loyalty_level", sa.Text))
    op.add_column("customer_facts", sa.Column("loyalty_level_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("customer_facts", "loyalty_level_at")
    op.drop_column("customer_facts", "loyalty_level")
