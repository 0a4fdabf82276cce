"""Tables owned by the subscriptions service."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.audit import audit_table
from shared.crypto import EncryptedText
from shared.db import Base, new_metadata
from shared.idempotency import idempotency_table
from shared.outbox import inbox_table, outbox_table

DELIVERY_STATUSES = ("pending", "succeeded", "failed")
SECRET_CONTEXT = "subscriptions.secret"
PREVIOUS_SECRET_CONTEXT = "subscriptions.previous_secret"


class Model(Base):
    __abstract__ = True
    metadata = new_metadata()


metadata = Model.metadata
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
audit_log = audit_table(metadata)


class Subscription(Model):
    """A webhook endpoint and the events it wants."""

    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    url: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    event_types: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    # The filters as SQL LIKE patterns, so the consumer matches events in one statement.
    type_like: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    customer_ids: Mapped[list[str] | None] = mapped_column(ARRAY(sa.Text))
    enabled: Mapped[bool] = mapped_column(sa.Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    failing_since: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Sealed at rest (AES-GCM, bound to the column); `python -m shared.crypto reencrypt
    # subscriptions` moves them to the newest key like every other sealed value.
    secret: Mapped[str] = mapped_column(EncryptedText(SECRET_CONTEXT))
    previous_secret: Mapped[str | None] = mapped_column(EncryptedText(PREVIOUS_SECRET_CONTEXT))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    version: Mapped[int] = mapped_column(sa.Integer, default=1)

    __table_args__ = (sa.Index("ix_subscriptions_created_at_id", "created_at", "id"),)


class Delivery(Model):
    """One event to deliver to one subscription; its id is the `webhook-id`."""

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # Enqueue order: within (subscription, ordering_key) deliveries go out in `seq` order.
    seq: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), unique=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(sa.Text)
    event_type: Mapped[str] = mapped_column(sa.Text)
    ordering_key: Mapped[str] = mapped_column(sa.Text)
    payload: Mapped[dict[str, object]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(sa.Text)
    attempt_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now()
    )
    completed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_deliveries_subscription_id"),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'failed')", name="ck_deliveries_status"
        ),
        sa.Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_deliveries_pending_order",
            "subscription_id",
            "ordering_key",
            "seq",
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.Index("ix_deliveries_subscription_seq", "subscription_id", "seq"),
        sa.Index("ix_deliveries_ordering_key", "ordering_key"),
    )


class DeliveryAttempt(Model):
    """One HTTP attempt of a delivery: the delivery log."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("deliveries.id", ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(sa.Integer)
    attempted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    latency_ms: Mapped[int] = mapped_column(sa.Integer)
    error: Mapped[str | None] = mapped_column(sa.Text)
    response_excerpt: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("ix_delivery_attempts_delivery_id", "delivery_id", "id"),)


subscriptions: sa.Table = Subscription.__table__  # type: ignore[assignment]
deliveries: sa.Table = Delivery.__table__  # type: ignore[assignment]
delivery_attempts: sa.Table = DeliveryAttempt.__table__  # type: ignore[assignment]


class ErasedCustomer(Model):
    """A customer whose mentions in the delivery log were redacted (`customer.erased`)."""

    __tablename__ = "erased_customers"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    deliveries_redacted: Mapped[int] = mapped_column(sa.Integer, server_default="0")


erased_customers: sa.Table = ErasedCustomer.__table__  # type: ignore[assignment]
