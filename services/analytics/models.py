"""Tables owned by the analytics service: read models only, rebuilt from the event feeds.

The consumer writes them with Core statements (`Model.__table__`), set-based per batch; the ORM
classes only give them typed names.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.audit import audit_table
from shared.db import Base, new_metadata
from shared.outbox import inbox_table, outbox_table

MONEY = sa.Numeric(18, 4)
TS = sa.DateTime(timezone=True)


class Model(Base):
    __abstract__ = True
    metadata = new_metadata()


metadata = Model.metadata
outbox = outbox_table(metadata)
# The management report reads one period's changes (a block range index: migration 0013).
sa.Index(
    "ix_outbox_time",
    outbox.c.time,
    postgresql_using="brin",
    postgresql_ops={"time": "timestamptz_minmax_multi_ops"},
    postgresql_with={"autosummarize": "on"},
)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)


class CustomerFacts(Model):
    """One row per customer: dimensions, window facts and the derived tiers."""

    __tablename__ = "customer_facts"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # Dimensions from kehu.customers (none of them personal data).
    profile_known: Mapped[bool] = mapped_column(server_default=sa.false())
    kind: Mapped[str | None] = mapped_column(sa.Text)
    customer_number: Mapped[str | None] = mapped_column(sa.Text)
    industry: Mapped[str | None] = mapped_column(sa.Text)
    region: Mapped[str | None] = mapped_column(sa.Text)
    company_size: Mapped[str | None] = mapped_column(sa.Text)
    source_channel: Mapped[str | None] = mapped_column(sa.Text)
    owner_id: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, server_default="active")
    dimensions_at: Mapped[datetime | None] = mapped_column(TS)
    erased: Mapped[bool] = mapped_column(server_default=sa.false())
    merged_into: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # The loyalty membership level (its code) from kehu.loyalty, and when loyalty changed it.
    loyalty_level: Mapped[str | None] = mapped_column(sa.Text)
    loyalty_level_at: Mapped[datetime | None] = mapped_column(TS)
    # Facts over the window, refreshed from the fact tables.
    revenue: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    contribution: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    revenue_recent: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    revenue_prior: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    purchase_count: Mapped[int] = mapped_column(server_default="0")
    purchases_total: Mapped[int] = mapped_column(server_default="0")
    first_purchase_at: Mapped[datetime | None] = mapped_column(TS)
    last_purchase_at: Mapped[datetime | None] = mapped_column(TS)
    last_contact_at: Mapped[datetime | None] = mapped_column(TS)
    interaction_count: Mapped[int] = mapped_column(server_default="0")
    complaints_total: Mapped[int] = mapped_column(server_default="0")
    complaints_open: Mapped[int] = mapped_column(server_default="0")
    sla_breaches_recent: Mapped[int] = mapped_column(server_default="0")
    dissatisfied_recent: Mapped[bool] = mapped_column(server_default=sa.false())
    facts_at: Mapped[datetime | None] = mapped_column(TS)
    # Derived.
    tier: Mapped[str | None] = mapped_column(sa.String(1))
    rfm_recency_days: Mapped[int | None]
    rfm_r: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rfm_f: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rfm_m: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rfm_segment: Mapped[str | None] = mapped_column(sa.Text)
    lifecycle_stage: Mapped[str | None] = mapped_column(sa.Text)
    churn_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    churn_level: Mapped[str | None] = mapped_column(sa.Text)
    churn_reasons: Mapped[list[str] | None] = mapped_column(ARRAY(sa.Text))
    # From when time alone can change lifecycle_stage or churn risk (null: not known yet);
    # the steady re-rank recomputes those only for customers past it (migration 0011).
    lifecycle_next_at: Mapped[datetime | None] = mapped_column(TS)

    __table_args__ = (
        sa.Index("ix_customer_facts_rank", sa.text("contribution DESC"), "customer_id"),
        sa.Index("ix_customer_facts_churn", sa.text("churn_score DESC"), "customer_id"),
    )


class Purchase(Model):
    __tablename__ = "purchases"

    purchase_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    # Null until purchase.recorded arrives (a cancellation can come first).
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    cost: Mapped[Decimal | None] = mapped_column(MONEY)
    margin: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str | None] = mapped_column(sa.Text)
    # In the reporting currency (the only money analytics adds); null when the purchase was
    # in another currency and carried no converted amounts.
    reporting_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    reporting_margin: Mapped[Decimal | None] = mapped_column(MONEY)
    status: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime | None] = mapped_column(TS)
    cancelled: Mapped[bool] = mapped_column(server_default=sa.false())


class Refund(Model):
    __tablename__ = "refunds"

    refund_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    purchase_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    margin: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.Text)
    reporting_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    reporting_margin: Mapped[Decimal | None] = mapped_column(MONEY)
    occurred_at: Mapped[datetime] = mapped_column(TS)


class Interaction(Model):
    __tablename__ = "interactions"

    interaction_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    channel: Mapped[str] = mapped_column(sa.Text)
    direction: Mapped[str] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(TS)
    agent_id: Mapped[str | None] = mapped_column(sa.Text)


class Survey(Model):
    __tablename__ = "surveys"

    survey_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    context_type: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(TS, index=True)
    nps: Mapped[int | None] = mapped_column(sa.SmallInteger)
    effort: Mapped[int | None] = mapped_column(sa.SmallInteger)


class SurveyAnswer(Model):
    __tablename__ = "survey_answers"

    survey_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    dimension: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    score: Mapped[int] = mapped_column(sa.SmallInteger)


class Complaint(Model):
    """A complaint as its events tell it, merged field by field whatever their order."""

    __tablename__ = "complaints"

    complaint_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    category: Mapped[str | None] = mapped_column(sa.Text)
    severity: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str | None] = mapped_column(sa.Text)
    status_at: Mapped[datetime | None] = mapped_column(TS)
    received_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    first_response_due_at: Mapped[datetime | None] = mapped_column(TS)
    resolution_due_at: Mapped[datetime | None] = mapped_column(TS)
    acknowledged_at: Mapped[datetime | None] = mapped_column(TS)
    first_response_seconds: Mapped[int | None]
    first_response_met: Mapped[bool | None]
    first_response_breached: Mapped[bool] = mapped_column(server_default=sa.false())
    resolved_at: Mapped[datetime | None] = mapped_column(TS)
    resolution_seconds: Mapped[int | None]
    resolution_met: Mapped[bool | None]
    resolution_breached: Mapped[bool] = mapped_column(server_default=sa.false())
    root_cause: Mapped[str | None] = mapped_column(sa.Text)
    reopen_count: Mapped[int] = mapped_column(server_default="0")
    escalation_level: Mapped[int | None]
    closed_at: Mapped[datetime | None] = mapped_column(TS)
    rating: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rated_at: Mapped[datetime | None] = mapped_column(TS)
    # From complaint.assigned (the latest assignment wins).
    assignee: Mapped[str | None] = mapped_column(sa.Text)
    team: Mapped[str | None] = mapped_column(sa.Text)
    assigned_at: Mapped[datetime | None] = mapped_column(TS)


class Followup(Model):
    """A follow-up as its events tell it (scheduled, completed, overdue, cancelled)."""

    __tablename__ = "followups"

    followup_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    kind: Mapped[str | None] = mapped_column(sa.Text)
    assignee_id: Mapped[str | None] = mapped_column(sa.Text)
    due_at: Mapped[datetime | None] = mapped_column(TS)
    scheduled_at: Mapped[datetime | None] = mapped_column(TS)
    completed_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    overdue_at: Mapped[datetime | None] = mapped_column(TS)
    cancelled_at: Mapped[datetime | None] = mapped_column(TS)
    interaction_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class AgentTeam(Model):
    """An agent's team, as the latest complaint assignment naming both told it."""

    __tablename__ = "agent_teams"

    agent_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    team: Mapped[str] = mapped_column(sa.Text)
    assigned_at: Mapped[datetime] = mapped_column(TS)


class CaseFact(Model):
    """A service-desk case of any type as its `case.*` events tell it (see `cases.py`)."""

    __tablename__ = "case_facts"

    case_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    type: Mapped[str] = mapped_column(sa.Text)
    subtype: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    severity: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str | None] = mapped_column(sa.Text)
    status_at: Mapped[datetime | None] = mapped_column(TS)
    received_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    first_response_seconds: Mapped[int | None]
    first_response_met: Mapped[bool | None]
    first_response_breached: Mapped[bool] = mapped_column(server_default=sa.false())
    resolved_at: Mapped[datetime | None] = mapped_column(TS)
    resolution_seconds: Mapped[int | None]
    resolution_met: Mapped[bool | None]
    resolution_breached: Mapped[bool] = mapped_column(server_default=sa.false())
    outcome: Mapped[str | None] = mapped_column(sa.Text)
    rating: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rated_at: Mapped[datetime | None] = mapped_column(TS)


class CustomerAlias(Model):
    """A merged-away customer id and the survivor its facts now belong to."""

    __tablename__ = "customer_aliases"

    merged_customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    survivor_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)


class ErasedCustomer(Model):
    """A customer erased (`customer.erased`): their rows now belong to an anonymous id.

    Kept through rebuilds (not a projection): events about an erased customer are not
    ingested again."""

    __tablename__ = "erased_customers"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(TS)


class RecomputeState(Model):
    """The debounce record of the global re-rank (one row, `rerank`); also a batch mutex."""

    __tablename__ = "recompute_state"

    name: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    due_at: Mapped[datetime | None] = mapped_column(TS)
    first_requested_at: Mapped[datetime | None] = mapped_column(TS)
    last_run_at: Mapped[datetime | None] = mapped_column(TS)
    last_duration_ms: Mapped[int | None]
    # The last re-rank that recomputed every customer's facts (others recompute the changed).
    last_full_at: Mapped[datetime | None] = mapped_column(TS)


customer_facts = cast(sa.Table, CustomerFacts.__table__)
purchases = cast(sa.Table, Purchase.__table__)
refunds = cast(sa.Table, Refund.__table__)
interactions = cast(sa.Table, Interaction.__table__)
surveys = cast(sa.Table, Survey.__table__)
survey_answers = cast(sa.Table, SurveyAnswer.__table__)
complaints = cast(sa.Table, Complaint.__table__)
case_facts = cast(sa.Table, CaseFact.__table__)
customer_aliases = cast(sa.Table, CustomerAlias.__table__)
erased_customers = cast(sa.Table, ErasedCustomer.__table__)
followups = cast(sa.Table, Followup.__table__)
agent_teams = cast(sa.Table, AgentTeam.__table__)
recompute_state = cast(sa.Table, RecomputeState.__table__)
# How far each source service's event feed has been checked by the catch-up (`catchup.py`).
feed_positions = sa.Table(
    "feed_positions",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("checked_at", TS, nullable=False),
)
PROJECTION_TABLES = (
    customer_facts,
    purchases,
    refunds,
    interactions,
    surveys,
    survey_answers,
    complaints,
    case_facts,
    customer_aliases,
    followups,
    agent_teams,
)
