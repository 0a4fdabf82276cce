"""Tables owned by the interactions service.

Customers live in profiles; here a customer is only an id. `customer_state` is a small local
projection (tier, cadence, last contact, next revisit, important dates) upserted from events and
from this service's own writes, so nothing here requires the customer to be known first.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.audit import audit_table
from shared.crypto import EncryptedText
from shared.db import Base, new_metadata
from shared.idempotency import idempotency_table
from shared.outbox import inbox_table, outbox_table

MONEY = sa.Numeric(18, 4)
RATE = sa.Numeric(18, 8)
TZ = sa.DateTime(timezone=True)


class Model(Base):
    __abstract__ = True
    metadata = new_metadata()


metadata = Model.metadata
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)
# Who read unmasked personal data or changed what (append-only; served at GET /audit).
audit_log = audit_table(metadata)


def _pii(table: str, column: str) -> EncryptedText:
    """Personal data at rest: AES-GCM ciphertext bound to its column (see shared.crypto)."""
    return EncryptedText(f"{table}.{column}")


def _now() -> Any:
    return sa.func.now()


class Interaction(Model):
    __tablename__ = "interactions"
    __table_args__ = (
        sa.Index("ix_interactions_customer_occurred", "customer_id", "occurred_at", "id"),
        sa.Index("ix_interactions_occurred", "occurred_at", "id"),
        sa.Index("ix_interactions_agent_occurred", "agent_id", "occurred_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    contact_person: Mapped[str | None] = mapped_column(_pii("interactions", "contact_person"))
    channel: Mapped[str] = mapped_column(sa.Text)
    direction: Mapped[str] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(TZ)
    duration_seconds: Mapped[int | None]
    subject: Mapped[str | None] = mapped_column(_pii("interactions", "subject"))
    summary: Mapped[str | None] = mapped_column(_pii("interactions", "summary"))
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    agent_id: Mapped[str | None] = mapped_column(sa.Text)
    need_id: Mapped[uuid.UUID | None]
    purchase_id: Mapped[uuid.UUID | None]
    complaint_id: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())


class Followup(Model):
    __tablename__ = "followups"
    __table_args__ = (
        sa.Index("ix_followups_customer_due", "customer_id", "due_at"),
        sa.Index("ix_followups_assignee_due", "assignee_id", "due_at"),
        # The overdue scheduler's scan: open and not yet announced as overdue.
        sa.Index(
            "ix_followups_overdue_scan",
            "due_at",
            postgresql_where=sa.text("status = 'open' AND overdue_notified_at IS NULL"),
        ),
        sa.Index(
            "ix_followups_case_id", "case_id", postgresql_where=sa.text("case_id IS NOT NULL")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(sa.Text)
    due_at: Mapped[datetime] = mapped_column(TZ)
    assignee_id: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, default="open")
    note: Mapped[str | None] = mapped_column(_pii("followups", "note"))
    origin: Mapped[str] = mapped_column(sa.Text, default="manual")
    # Set for follow-ups the service creates itself, so a retried job never doubles one.
    dedupe_key: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    interaction_id: Mapped[uuid.UUID | None]
    # A revisit of a service-desk case (created from `case.resolved`), and what it found.
    case_id: Mapped[uuid.UUID | None]
    revisit_outcome: Mapped[str | None] = mapped_column(sa.Text)
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    overdue_notified_at: Mapped[datetime | None] = mapped_column(TZ)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())


class Purchase(Model):
    __tablename__ = "purchases"
    __table_args__ = (
        sa.UniqueConstraint(
            "customer_id", "external_ref", name="uq_purchases_customer_id_external_ref"
        ),
        sa.Index("ix_purchases_customer_occurred", "customer_id", "occurred_at", "id"),
        sa.Index("ix_purchases_occurred", "occurred_at", "id"),
        sa.CheckConstraint("refunded_amount <= amount", name="refund_within_amount"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    external_ref: Mapped[str] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(TZ)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    cost: Mapped[Decimal] = mapped_column(MONEY)
    margin: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.Text)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    refunded_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    refunded_margin: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0))
    # Converted when recorded at the rate of its date (1 in the reporting currency itself).
    reporting_currency: Mapped[str | None] = mapped_column(sa.String(3))
    fx_rate: Mapped[Decimal | None] = mapped_column(RATE)
    reporting_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    reporting_cost: Mapped[Decimal | None] = mapped_column(MONEY)
    reporting_margin: Mapped[Decimal | None] = mapped_column(MONEY)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())


class Refund(Model):
    __tablename__ = "refunds"
    __table_args__ = (sa.Index("ix_refunds_purchase_id", "purchase_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    purchase_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("purchases.id"))
    customer_id: Mapped[uuid.UUID]
    amount: Mapped[Decimal] = mapped_column(MONEY)
    margin: Mapped[Decimal] = mapped_column(MONEY)
    reason: Mapped[str | None] = mapped_column(_pii("refunds", "reason"))
    occurred_at: Mapped[datetime] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())
    # In the purchase's currency; converted at the rate of the refund's own date.
    reporting_currency: Mapped[str | None] = mapped_column(sa.String(3))
    fx_rate: Mapped[Decimal | None] = mapped_column(RATE)
    reporting_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    reporting_margin: Mapped[Decimal | None] = mapped_column(MONEY)


class FxRate(Model):
    """An exchange rate an admin maintains: reporting-currency units for one unit of
    `currency` on `rate_date` (UTC)."""

    __tablename__ = "fx_rates"

    currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    reporting_currency: Mapped[str] = mapped_column(sa.String(3), primary_key=True)
    rate_date: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    rate: Mapped[Decimal] = mapped_column(RATE)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())
    updated_by: Mapped[str | None] = mapped_column(sa.Text)


class Survey(Model):
    __tablename__ = "surveys"
    __table_args__ = (sa.Index("ix_surveys_customer_submitted", "customer_id", "submitted_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    invitation_id: Mapped[uuid.UUID | None]
    context_type: Mapped[str | None] = mapped_column(sa.Text)
    context_id: Mapped[uuid.UUID | None]
    channel: Mapped[str | None] = mapped_column(sa.Text)
    scores: Mapped[dict[str, int]] = mapped_column(JSONB)
    nps: Mapped[int | None]
    effort: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(_pii("surveys", "comment"))
    submitted_at: Mapped[datetime] = mapped_column(TZ)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())


class SurveyInvitation(Model):
    __tablename__ = "survey_invitations"
    __table_args__ = (sa.Index("ix_survey_invitations_customer_sent", "customer_id", "sent_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    context_type: Mapped[str | None] = mapped_column(sa.Text)
    context_id: Mapped[uuid.UUID | None]
    channel: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime] = mapped_column(TZ)
    survey_id: Mapped[uuid.UUID | None]


class CustomerState(Model):
    """What this service knows about a customer, from events and its own writes."""

    __tablename__ = "customer_state"
    __table_args__ = (
        sa.Index(
            "ix_customer_state_next_revisit",
            "next_revisit_at",
            postgresql_where=sa.text("erased_at IS NULL AND merged_into IS NULL"),
        ),
        sa.Index(
            "ix_customer_state_care_next",
            "care_next_on",
            postgresql_where=sa.text("erased_at IS NULL AND merged_into IS NULL"),
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tier: Mapped[str | None] = mapped_column(sa.String(1))
    tier_changed_at: Mapped[datetime | None] = mapped_column(TZ)
    cadence_days_override: Mapped[int | None]
    owner_id: Mapped[str | None] = mapped_column(sa.Text)
    last_contact_at: Mapped[datetime | None] = mapped_column(TZ)
    next_revisit_at: Mapped[datetime | None] = mapped_column(TZ)
    # The next_revisit_at a revisit follow-up was already created for.
    revisit_scheduled_for: Mapped[datetime | None] = mapped_column(TZ)
    important_dates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    dimensions_at: Mapped[datetime | None] = mapped_column(TZ)
    care_next_on: Mapped[date | None] = mapped_column(sa.Date)
    last_invited_at: Mapped[datetime | None] = mapped_column(TZ)
    merged_into: Mapped[uuid.UUID | None]
    erased_at: Mapped[datetime | None] = mapped_column(TZ)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=_now())


class TimelineRecord(Model):
    """What other services publish that the timeline shows: cases (the service desk), needs
    and consent changes (profiles). Codes, states and times only; the newest event wins."""

    __tablename__ = "timeline_records"
    __table_args__ = (sa.Index("ix_timeline_records_customer_at", "customer_id", "at"),)

    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    at: Mapped[datetime] = mapped_column(TZ)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_at: Mapped[datetime] = mapped_column(TZ)
