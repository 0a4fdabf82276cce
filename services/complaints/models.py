"""Tables owned by the complaints service."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.audit import audit_table
from shared.crypto import EncryptedText
from shared.db import Base, new_metadata
from shared.idempotency import idempotency_table
from shared.outbox import inbox_table, outbox_table


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


TZ = sa.DateTime(timezone=True)


class Complaint(Model):
    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    channel: Mapped[str] = mapped_column(sa.Text)
    category: Mapped[str] = mapped_column(sa.Text)
    severity: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    tier: Mapped[str] = mapped_column(sa.Text)
    # Complainant details and free text: personal data, scrubbed when the customer is erased.
    complainant_name: Mapped[str | None] = mapped_column(_pii("complaints", "complainant_name"))
    complainant_email: Mapped[str | None] = mapped_column(_pii("complaints", "complainant_email"))
    complainant_phone: Mapped[str | None] = mapped_column(_pii("complaints", "complainant_phone"))
    subject: Mapped[str | None] = mapped_column(_pii("complaints", "subject"))
    description: Mapped[str | None] = mapped_column(_pii("complaints", "description"))
    related_purchase_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    related_interaction_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    assignee: Mapped[str | None] = mapped_column(sa.Text)
    team: Mapped[str | None] = mapped_column(sa.Text)
    escalation_level: Mapped[int] = mapped_column(sa.Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(TZ)
    first_response_at: Mapped[datetime | None] = mapped_column(TZ)
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    # SLA clock: seconds it was stopped, and since when it is stopped now (None = running).
    paused_seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)
    paused_since: Mapped[datetime | None] = mapped_column(TZ)
    # Targets in SLA seconds, from the severity × tier matrix when received or re-tiered.
    first_response_target_s: Mapped[int] = mapped_column(sa.Integer)
    resolution_target_s: Mapped[int] = mapped_column(sa.Integer)
    first_response_due_at: Mapped[datetime] = mapped_column(TZ)
    first_response_warn_at: Mapped[datetime] = mapped_column(TZ)
    resolution_due_at: Mapped[datetime] = mapped_column(TZ)
    resolution_warn_at: Mapped[datetime] = mapped_column(TZ)
    first_response_warned: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    first_response_breached: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    resolution_warned: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    resolution_breached: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    sla_status: Mapped[str] = mapped_column(sa.Text, default="on_track")
    # When the scheduler must look at this complaint next (None: nothing pending or paused).
    next_sla_check_at: Mapped[datetime | None] = mapped_column(TZ)
    # The deadline that matters now, for sorting the work queue (None when resolved/closed).
    next_due_at: Mapped[datetime | None] = mapped_column(TZ)
    root_cause_category: Mapped[str | None] = mapped_column(sa.Text)
    root_cause: Mapped[str | None] = mapped_column(_pii("complaints", "root_cause"))
    resolution: Mapped[str | None] = mapped_column(_pii("complaints", "resolution"))
    rating: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rating_comment: Mapped[str | None] = mapped_column(_pii("complaints", "rating_comment"))
    rated_at: Mapped[datetime | None] = mapped_column(TZ)
    revisit_due_at: Mapped[datetime | None] = mapped_column(TZ)
    revisit_outcome: Mapped[str | None] = mapped_column(sa.Text)
    reopen_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    erased_at: Mapped[datetime | None] = mapped_column(TZ)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())

    __table_args__ = (
        sa.Index(
            "ix_complaints_next_sla_check_at",
            "next_sla_check_at",
            postgresql_where=sa.text("next_sla_check_at IS NOT NULL"),
        ),
        sa.Index("ix_complaints_queue", sa.text("coalesce(next_due_at, 'infinity')"), "id"),
        sa.Index("ix_complaints_assignee_status", "assignee", "status"),
    )


class Transition(Model):
    __tablename__ = "complaint_transitions"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("complaints.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(sa.Text)
    to_status: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str | None] = mapped_column(sa.Text)
    note: Mapped[str | None] = mapped_column(_pii("complaint_transitions", "note"))
    at: Mapped[datetime] = mapped_column(TZ)


class Note(Model):
    __tablename__ = "complaint_notes"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("complaints.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str | None] = mapped_column(_pii("complaint_notes", "body"))
    created_at: Mapped[datetime] = mapped_column(TZ)


class Action(Model):
    """A corrective or preventive action of a complaint."""

    __tablename__ = "complaint_actions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    complaint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("complaints.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(_pii("complaint_actions", "description"))
    owner: Mapped[str] = mapped_column(sa.Text)
    due_date: Mapped[date | None] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class Agent(Model):
    """An agent who can be assigned complaints, in one team."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    team: Mapped[str] = mapped_column(sa.Text, index=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())


class CustomerTier(Model):
    """The latest ABC tier per customer, from `customer.tier_changed`."""

    __tablename__ = "customer_tiers"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tier: Mapped[str] = mapped_column(sa.Text)
    as_of: Mapped[datetime] = mapped_column(TZ)


class CustomerRedirect(Model):
    """Merged duplicates: complaints filed later for `merged_id` go to `survivor_id`."""

    __tablename__ = "customer_redirects"

    merged_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    survivor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))


class ErasedCustomer(Model):
    """Customers whose personal data was erased: complaints filed for them later keep none."""

    __tablename__ = "erased_customers"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(TZ)
