"""The loyalty domain: levels, members, purchases, lots, the ledger, rewards, redemptions,
coupons, birthdays (sealed), erasures and the append-only audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.audit import create_audit_table, drop_audit_table

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
ID = UUID(as_uuid=True)

# The programme starts with three levels; `PUT /levels` replaces them.
DEFAULT_LEVELS = [
    {"code": "member", "name": "Member", "threshold": 0, "multiplier": "1.000"},
    {"code": "silver", "name": "Silver", "threshold": 2000, "multiplier": "1.250"},
    {"code": "gold", "name": "Gold", "threshold": 10000, "multiplier": "1.500"},
]


def upgrade() -> None:
    level_table = op.create_table(
        "levels",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("multiplier", sa.Numeric(6, 3), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_levels"),
        sa.UniqueConstraint("threshold", name="uq_levels_threshold"),
    )
    op.bulk_insert(level_table, DEFAULT_LEVELS)
    op.create_table(
        "members",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("level", sa.Text),
        sa.Column("level_changed_at", TZ),
        sa.Column("debt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("evaluated_month", sa.Text, nullable=False),
        sa.Column("tier", sa.Text),
        sa.Column("tier_at", TZ),
        sa.Column("enrolled_via", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("erased_at", TZ),
        sa.PrimaryKeyConstraint("customer_id", name="pk_members"),
    )
    op.create_table(
        "member_aliases",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("survivor_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_member_aliases"),
    )
    op.create_table(
        "purchases",
        sa.Column("purchase_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("amount", sa.Numeric(18, 4), nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("multiplier", sa.Numeric(6, 3), nullable=False),
        sa.Column("reversed_points", sa.Integer, nullable=False, server_default="0"),
        sa.Column("refunded_amount", sa.Numeric(18, 4), nullable=False, server_default="0"),
        sa.Column("cancelled", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("skipped_reason", sa.Text),
        sa.Column("lot_id", sa.BigInteger),
        sa.PrimaryKeyConstraint("purchase_id", name="pk_purchases"),
    )
    op.create_index("ix_purchases_customer_id", "purchases", ["customer_id"])
    op.create_table(
        "lots",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("remaining", sa.Integer, nullable=False),
        sa.Column("earned_at", TZ, nullable=False),
        sa.Column("available_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("expiring_notified", sa.Boolean, nullable=False, server_default="false"),
        sa.PrimaryKeyConstraint("id", name="pk_lots"),
        sa.CheckConstraint("remaining >= 0", name="ck_lots_remaining_not_negative"),
    )
    op.create_index(
        "ix_lots_customer_open",
        "lots",
        ["customer_id", "expires_at"],
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_index(
        "ix_lots_expiry_open", "lots", ["expires_at"], postgresql_where=sa.text("remaining > 0")
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source_id", sa.Text),
        sa.Column("source_event_id", sa.Text),
        sa.Column("lot_id", sa.BigInteger),
        sa.Column("redemption_id", ID),
        sa.Column("uncovered", sa.Integer, nullable=False, server_default="0"),
        sa.Column("negative", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_entries"),
    )
    op.create_index("ix_entries_customer", "entries", ["customer_id", "id"])
    op.create_index("ux_entries_source_event", "entries", ["source_event_id"], unique=True)
    op.create_index(
        "ux_entries_source",
        "entries",
        ["kind", "source_id"],
        unique=True,
        postgresql_where=sa.text("kind IN ('earn', 'reverse', 'bonus')"),
    )
    op.create_table(
        "draws",
        sa.Column("entry_id", sa.BigInteger, nullable=False),
        sa.Column("lot_id", sa.BigInteger, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("entry_id", "lot_id", name="pk_draws"),
    )
    op.create_table(
        "rewards",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("points_cost", sa.Integer, nullable=False),
        sa.Column("stock", sa.Integer),
        sa.Column("per_customer_limit", sa.Integer),
        sa.Column("valid_from", TZ),
        sa.Column("valid_until", TZ),
        sa.Column("coupon_valid_days", sa.Integer),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_rewards"),
    )
    op.create_table(
        "redemptions",
        sa.Column("id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("reward_code", sa.Text),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("entry_id", sa.BigInteger, nullable=False),
        sa.Column("coupon_code", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("cancelled_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_redemptions"),
    )
    op.create_index("ix_redemptions_customer_id", "redemptions", ["customer_id"])
    op.create_table(
        "coupons",
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("redemption_id", ID, nullable=False),
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("reward_code", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("valid_until", TZ),
        sa.Column("used_at", TZ),
        sa.PrimaryKeyConstraint("code", name="pk_coupons"),
    )
    op.create_index("ix_coupons_customer_id", "coupons", ["customer_id"])
    op.create_table(
        "birthdays",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("month_day", sa.Text, nullable=False),
        sa.Column("day_index", sa.Text, nullable=False),
        sa.Column("entered_at", TZ, nullable=False),
        sa.Column("last_handled_year", sa.Integer),
        sa.PrimaryKeyConstraint("customer_id", name="pk_birthdays"),
    )
    op.create_index("ix_birthdays_day_index", "birthdays", ["day_index"])
    op.create_table(
        "erased_customers",
        sa.Column("customer_id", ID, nullable=False),
        sa.Column("erased_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_erased_customers"),
    )
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
    for table in (
        "erased_customers",
        "birthdays",
        "coupons",
        "redemptions",
        "rewards",
        "draws",
        "entries",
        "lots",
        "purchases",
        "member_aliases",
        "members",
        "levels",
    ):
        op.drop_table(table)
