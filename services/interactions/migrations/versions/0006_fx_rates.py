"""Exchange rates and converted amounts: one reporting currency (`KEHU_REPORTING_CURRENCY`).

Purchases and refunds keep their original amounts and gain the amounts converted into the
reporting currency when recorded. Rows already in the reporting currency are backfilled at a
rate of 1; rows in other currencies stay unconverted (null), as no rate was known for them.

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
RATE = sa.Numeric(18, 8)


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("reporting_currency", sa.String(3), primary_key=True),
        sa.Column("rate_date", sa.Date, primary_key=True),
        sa.Column("rate", RATE, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_by", sa.Text),
    )
    for table, columns in (
        ("purchases", ("reporting_amount", "reporting_cost", "reporting_margin")),
        ("refunds", ("reporting_amount", "reporting_margin")),
    ):
        op.add_column(table, sa.Column("reporting_currency", sa.String(3)))
        op.add_column(table, sa.Column("fx_rate", RATE))
        for column in columns:
            op.add_column(table, sa.Column(column, MONEY))
    reporting = os.environ.get("KEHU_REPORTING_CURRENCY", "CNY")
    op.execute(
        sa.text(
            "UPDATE purchases SET reporting_currency = currency, fx_rate = 1, "
            "reporting_amount = amount, reporting_cost = cost, reporting_margin = margin "
            "WHERE currency = :c"
        ).bindparams(c=reporting)
    )
    op.execute(
        sa.text(
            "UPDATE refunds r SET reporting_currency = p.currency, fx_rate = 1, "
            "reporting_amount = r.amount, reporting_margin = r.margin "
            "FROM purchases p WHERE p.id = r.purchase_id AND p.currency = :c"
        ).bindparams(c=reporting)
    )


def downgrade() -> None:
    for table, columns in (
        ("purchases", ("reporting_amount", "reporting_cost", "reporting_margin")),
        ("refunds", ("reporting_amount", "reporting_margin")),
    ):
        for column in ("reporting_currency", "fx_rate", *columns):
            op.drop_column(table, column)
    op.drop_table("fx_rates")
