"""Money in the reporting currency only (`KEHU_REPORTING_CURRENCY`, default CNY).

Purchases and refunds gain `reporting_amount` / `reporting_margin`, the only amounts revenue,
contribution, ABC and RFM add. Rows already in the reporting currency are backfilled with their
own amounts; rows in other currencies stay null (they carried no converted amounts) and count
no more until a rebuild replays events that do.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import os

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 4)


def upgrade() -> None:
    reporting = os.environ.get("KEHU_REPORTING_CURRENCY", "CNY")
    for table in ("purchases", "refunds"):
        op.add_column(table, sa.Column("reporting_amount", MONEY))
        op.add_column(table, sa.Column("reporting_margin", MONEY))
        op.execute(
            sa.text(
                f"UPDATE {table} SET reporting_amount = amount, reporting_margin = margin "
                "WHERE currency = :c"
            ).bindparams(c=reporting)
        )


def downgrade() -> None:
    for table in ("purchases", "refunds"):
        op.drop_column(table, "reporting_margin")
        op.drop_column(table, "reporting_amount")
