"""Tables owned by the loyalty service (SQLAlchemy Core: the consumer path is set-based)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.audit import audit_table
from shared.crypto import EncryptedText
from shared.db import new_metadata
from shared.idempotency import idempotency_table
from shared.outbox import inbox_table, outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
audit_log = audit_table(metadata)

TZ = sa.DateTime(timezone=True)
ID = UUID(as_uuid=True)
EARNING_KINDS = ("earn", "reverse", "bonus")

levels = sa.Table(
    "levels",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("threshold", sa.Integer, nullable=False, unique=True),
    sa.Column("multiplier", sa.Numeric(6, 3), nullable=False),
)

# Every member's row is the lock that serialises its balance: each change of its lots
# (earning, reversal, redemption, cancellation, expiry, merge) first takes it FOR UPDATE.
members = sa.Table(
    "members",
    metadata,
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("level", sa.Text),
    sa.Column("level_changed_at", TZ),
    # Points owed after a reversal larger than the member's lots (the balance below zero).
    sa.Column("debt", sa.Integer, nullable=False, server_default="0"),
    sa.Column("evaluated_month", sa.Text, nullable=False),  # last monthly evaluation, YYYY-MM
    sa.Column("tier", sa.Text),  # the ABC tier from analytics, shown on the member
    sa.Column("tier_at", TZ),
    sa.Column("enrolled_via", sa.Text, nullable=False),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("erased_at", TZ),
)

# A merged duplicate's later events land on its survivor.
member_aliases = sa.Table(
    "member_aliases",
    metadata,
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("survivor_id", ID, nullable=False),
)

purchases = sa.Table(
    "purchases",
    metadata,
    sa.Column("purchase_id", ID, primary_key=True),
    sa.Column("customer_id", ID, nullable=False, index=True),
    sa.Column("amount", sa.Numeric(18, 4), nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("occurred_at", TZ, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("multiplier", sa.Numeric(6, 3), nullable=False),
    sa.Column("reversed_points", sa.Integer, nullable=False, server_default="0"),
    sa.Column("refunded_amount", sa.Numeric(18, 4), nullable=False, server_default="0"),
    sa.Column("cancelled", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("skipped_reason", sa.Text),  # why it earned nothing (e.g. another currency)
    sa.Column("lot_id", sa.BigInteger),
)

lots = sa.Table(
    "lots",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("customer_id", ID, nullable=False),
    sa.Column("source", sa.Text, nullable=False),  # purchase, bonus, adjustment
    sa.Column("source_id", sa.Text, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("remaining", sa.Integer, nullable=False),
    sa.Column("earned_at", TZ, nullable=False),
    sa.Column("available_at", TZ, nullable=False),  # pending until then
    sa.Column("expires_at", TZ, nullable=False),
    sa.Column("expiring_notified", sa.Boolean, nullable=False, server_default="false"),
    sa.CheckConstraint("remaining >= 0", name="remaining_not_negative"),
    sa.Index(
        "ix_lots_customer_open", "customer_id", "expires_at", postgresql_where="remaining > 0"
    ),
    sa.Index("ix_lots_expiry_open", "expires_at", postgresql_where="remaining > 0"),
)

# The append-only ledger: the sum of a member's entries is available + pending - debt.
entries = sa.Table(
    "entries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("customer_id", ID, nullable=False),
    sa.Column("at", TZ, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # earn reverse redeem restore expire adjust bonus
    sa.Column("points", sa.Integer, nullable=False),  # signed
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source_id", sa.Text),  # purchase, refund, redemption, lot...
    sa.Column("source_event_id", sa.Text),  # the consumed event that caused it
    sa.Column("lot_id", sa.BigInteger),
    sa.Column("redemption_id", ID),
    # Points a reversal could not take from lots: owed (negative balance) or written off.
    sa.Column("uncovered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("negative", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("details", JSONB, nullable=False, server_default="{}"),
    sa.Index("ix_entries_customer", "customer_id", "id"),
    sa.Index("ux_entries_source_event", "source_event_id", unique=True),
    sa.Index(
        "ux_entries_source",
        "kind",
        "source_id",
        unique=True,
        postgresql_where=sa.text("kind IN ('earn', 'reverse', 'bonus')"),
    ),
)

# Which lots an entry took points from (or gave back to): restores a cancelled redemption.
draws = sa.Table(
    "draws",
    metadata,
    sa.Column("entry_id", sa.BigInteger, primary_key=True),
    sa.Column("lot_id", sa.BigInteger, primary_key=True),
    sa.Column("points", sa.Integer, nullable=False),
)

rewards = sa.Table(
    "rewards",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # coupon or item
    sa.Column("points_cost", sa.Integer, nullable=False),
    sa.Column("stock", sa.Integer),  # None: unlimited
    sa.Column("per_customer_limit", sa.Integer),
    sa.Column("valid_from", TZ),
    sa.Column("valid_until", TZ),
    sa.Column("coupon_valid_days", sa.Integer),
    sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_at", TZ, nullable=False),
)

redemptions = sa.Table(
    "redemptions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("customer_id", ID, nullable=False, index=True),
    sa.Column("reward_code", sa.Text),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # completed, cancelled
    sa.Column("entry_id", sa.BigInteger, nullable=False),
    sa.Column("coupon_code", sa.Text),
    sa.Column("created_at", TZ, nullable=False),
    sa.Column("cancelled_at", TZ),
)

coupons = sa.Table(
    "coupons",
    metadata,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("redemption_id", ID, nullable=False),
    sa.Column("customer_id", ID, nullable=False, index=True),
    sa.Column("reward_code", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # issued, used, void
    sa.Column("issued_at", TZ, nullable=False),
    sa.Column("valid_until", TZ),
    sa.Column("used_at", TZ),
)

# Important dates from profiles: the birthday is personal data (sealed; found by a blind index).
birthdays = sa.Table(
    "birthdays",
    metadata,
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("month_day", EncryptedText("birthdays.month_day"), nullable=False),
    sa.Column("day_index", sa.Text, nullable=False, index=True),
    sa.Column("entered_at", TZ, nullable=False),
    sa.Column("last_handled_year", sa.Integer),
)

erased_customers = sa.Table(
    "erased_customers",
    metadata,
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("erased_at", TZ, nullable=False),
)
