"""Tables owned by the profiles service.

Personal data (PII) lives only here and is kept in clearly marked column groups (`PII_COLUMNS`
per table) so that erasure and, later, encryption at rest can treat exactly those columns.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, new_metadata
from shared.http import idempotency_table
from shared.outbox import inbox_table, outbox_table


class Model(Base):
    __abstract__ = True
    metadata = new_metadata()


metadata = Model.metadata
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
idempotency_keys = idempotency_table(metadata)

TZ = sa.DateTime(timezone=True)


class Customer(Model):
    """A person or organisation in the archive."""

    __tablename__ = "customers"
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_number: Mapped[str] = mapped_column(
        sa.Text, unique=True, server_default=sa.text("next_customer_number()")
    )
    kind: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, server_default="active")
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    external_ref: Mapped[str | None] = mapped_column(sa.Text, unique=True)

    # -- PII: erased on request; to be encrypted at rest (see PII_COLUMNS) -------------------
    display_name: Mapped[str] = mapped_column(sa.Text)
    legal_name: Mapped[str | None] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.Text)
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    notes: Mapped[str | None] = mapped_column(sa.Text)
    custom_attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    # -- non-identifying facts -----------------------------------------------------------------
    company_name: Mapped[str | None] = mapped_column(sa.Text)
    industry: Mapped[str | None] = mapped_column(sa.Text)
    region: Mapped[str | None] = mapped_column(sa.Text)
    company_size: Mapped[str | None] = mapped_column(sa.Text)
    source_channel: Mapped[str | None] = mapped_column(sa.Text)
    owner_id: Mapped[str | None] = mapped_column(sa.Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(sa.Text), server_default="{}")
    language: Mapped[str | None] = mapped_column(sa.Text)
    preferred_channel: Mapped[str | None] = mapped_column(sa.Text)
    important_dates: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)
    archived_at: Mapped[datetime | None] = mapped_column(TZ)
    erased_at: Mapped[datetime | None] = mapped_column(TZ)

    PII_COLUMNS = (
        "display_name",
        "legal_name",
        "email",
        "phone",
        "addresses",
        "notes",
        "custom_attributes",
    )


class Contact(Model):
    """A person at an organisation customer, with their role."""

    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("customers.id"), index=True
    )
    role: Mapped[str | None] = mapped_column(sa.Text)
    is_primary: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    # -- PII ---------------------------------------------------------------------------------
    name: Mapped[str] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.Text)
    notes: Mapped[str | None] = mapped_column(sa.Text)
    # ---------------------------------------------------------------------------------------
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)

    PII_COLUMNS = ("name", "email", "phone", "notes")


class Need(Model):
    """A business need or requirement of a customer."""

    __tablename__ = "needs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("customers.id"), index=True
    )
    category: Mapped[str] = mapped_column(sa.Text)
    priority: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    due_date: Mapped[date | None] = mapped_column(sa.Date)
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    # -- PII (free text may name people) ------------------------------------------------------
    title: Mapped[str] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    # ---------------------------------------------------------------------------------------
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)

    PII_COLUMNS = ("title", "description")


class ConsentRecord(Model):
    """One grant or withdrawal of a consent; the latest per purpose is the current state."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("customers.id")
    )
    purpose: Mapped[str] = mapped_column(sa.Text)
    granted: Mapped[bool] = mapped_column(sa.Boolean)
    source: Mapped[str] = mapped_column(sa.Text)
    recorded_by: Mapped[str] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(TZ)

    __table_args__ = (sa.Index("ix_consent_records_customer", "customer_id", "purpose", "id"),)


class HistoryEntry(Model):
    """Who changed which fields of a customer (or its contacts, needs, consent), when."""

    __tablename__ = "customer_history"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    entity: Mapped[str] = mapped_column(sa.Text)
    entity_id: Mapped[str] = mapped_column(sa.Text)
    action: Mapped[str] = mapped_column(sa.Text)
    actor: Mapped[str] = mapped_column(sa.Text)
    changed_at: Mapped[datetime] = mapped_column(TZ)
    # {field: {"old": ..., "new": ...}}; values of PII fields are scrubbed on erasure.
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)

    __table_args__ = (sa.Index("ix_customer_history_customer", "customer_id", "id"),)


class CustomerInsights(Model):
    """Read-only insights from the analytics service; each part applied only if newer."""

    __tablename__ = "customer_insights"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tier: Mapped[str | None] = mapped_column(sa.Text)
    tier_changed_at: Mapped[datetime | None] = mapped_column(TZ)
    lifecycle_stage: Mapped[str | None] = mapped_column(sa.Text)
    lifecycle_changed_at: Mapped[datetime | None] = mapped_column(TZ)
    churn_risk_score: Mapped[int | None] = mapped_column(sa.Integer)
    churn_risk_level: Mapped[str | None] = mapped_column(sa.Text)
    churn_risk_reasons: Mapped[list[str] | None] = mapped_column(JSONB)
    churn_risk_changed_at: Mapped[datetime | None] = mapped_column(TZ)


def table_of(model: type[Model]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table
