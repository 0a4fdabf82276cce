"""Tables owned by the complaints service."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
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


class Case(Model):
    """A case of any type: inquiry, service request, technical support, suggestion, complaint
    or claim. The table keeps its first name, `complaints` (every row was a complaint before
    the service desk); complaint-type cases are the rows `/complaints` serves."""

    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    type: Mapped[str] = mapped_column(sa.Text, default="complaint")
    subtype: Mapped[str | None] = mapped_column(sa.Text)
    # Human reference: type prefix, year of receipt, per-year sequence (SR-2026-000123).
    reference: Mapped[str] = mapped_column(sa.Text, unique=True)
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
    # Claims: what is claimed back for which purchase, and the return window it must be in.
    claim_kind: Mapped[str | None] = mapped_column(sa.Text)
    amount_claimed: Mapped[Decimal | None] = mapped_column(sa.Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)
    return_window_days: Mapped[int | None] = mapped_column(sa.Integer)
    window_overridden_by: Mapped[str | None] = mapped_column(sa.Text)
    assignee: Mapped[str | None] = mapped_column(sa.Text)
    team: Mapped[str | None] = mapped_column(sa.Text)
    # `management` while the case waits in the management queue (escalation level 2).
    queue: Mapped[str | None] = mapped_column(sa.Text)
    escalation_level: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Set once a critical severity escalated the case, so it escalates for that only once.
    critical_escalated: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(TZ)
    first_response_at: Mapped[datetime | None] = mapped_column(TZ)
    resolved_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    # SLA clock: seconds it was stopped, and since when it is stopped now (None = running).
    paused_seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)
    paused_since: Mapped[datetime | None] = mapped_column(TZ)
    # The SLA policy that matched, and its business calendar (None: the service's calendar).
    sla_policy: Mapped[str] = mapped_column(sa.Text, default="default")
    sla_calendar: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    pause_states: Mapped[list[str]] = mapped_column(
        ARRAY(sa.Text), default=lambda: ["waiting_on_customer"]
    )
    # Targets in SLA seconds, from the matching SLA policy when received, re-typed or re-tiered.
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
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    rating: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rating_comment: Mapped[str | None] = mapped_column(_pii("complaints", "rating_comment"))
    rated_at: Mapped[datetime | None] = mapped_column(TZ)
    revisit_due_at: Mapped[datetime | None] = mapped_column(TZ)
    revisit_outcome: Mapped[str | None] = mapped_column(sa.Text)
    revisit_followup_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
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
        sa.Index("ix_complaints_type", "type"),
    )


# The name the complaint-type view and older code know the table's rows by.
Complaint = Case


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
    """An agent who can be assigned cases, in one team, with skills routing asks for."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    team: Mapped[str] = mapped_column(sa.Text, index=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    skills: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), default=list)
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


# -- the service desk's configuration ----------------------------------------------------------


class Team(Model):
    """A team: its lead (level-1 escalations go to them); members are `agents` rows."""

    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    lead: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())


class RoutingRule(Model):
    """Ordered: the first rule whose every given criterion matches routes the case."""

    __tablename__ = "routing_rules"

    position: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    type: Mapped[str | None] = mapped_column(sa.Text)
    subtype: Mapped[str | None] = mapped_column(sa.Text)
    category: Mapped[str | None] = mapped_column(sa.Text)
    tier: Mapped[str | None] = mapped_column(sa.Text)
    team: Mapped[str] = mapped_column(sa.Text)
    skill: Mapped[str | None] = mapped_column(sa.Text)


class SlaPolicy(Model):
    """Ordered: the first policy whose every given criterion matches sets a case's SLA."""

    __tablename__ = "sla_policies"

    position: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text, unique=True)
    type: Mapped[str | None] = mapped_column(sa.Text)
    subtype: Mapped[str | None] = mapped_column(sa.Text)
    severity: Mapped[str | None] = mapped_column(sa.Text)
    tier: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    first_response_s: Mapped[int] = mapped_column(sa.Integer)
    resolution_s: Mapped[int] = mapped_column(sa.Integer)
    pause_states: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    calendar: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Holiday(Model):
    """A day business calendars do not count (a public holiday)."""

    __tablename__ = "holidays"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)


class DeskConfig(Model):
    """One row: the version of the desk's configuration (SLA policies, routing rules,
    holidays), raised by triggers in every transaction that changes them; intake keeps its
    copy of the configuration while the version stays the same."""

    __tablename__ = "desk_config"
    __table_args__ = (sa.CheckConstraint("id = 1", name="ck_desk_config_one_row"),)

    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, server_default="1")
    version: Mapped[int] = mapped_column(sa.BigInteger)


class CannedResponse(Model):
    """A reply text agents insert into a case's notes, per case type and locale."""

    __tablename__ = "canned_responses"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    type: Mapped[str | None] = mapped_column(sa.Text)
    locale: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)


class ReferenceCounter(Model):
    """The last number handed out per reference prefix and year."""

    __tablename__ = "reference_counters"

    prefix: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    last: Mapped[int] = mapped_column(sa.Integer)
