"""Tables owned by the profiles service.

Personal data (PII) lives only here and is kept in clearly marked column groups (`PII_COLUMNS`
per table) so that erasure and encryption at rest treat exactly those columns.

Encrypted at rest (AES-GCM, `shared.crypto`, key id per value, rotatable with
`python -m shared.crypto reencrypt profiles`): customers' display and legal name, e-mail, phone,
addresses, notes and custom attributes (free JSON may hold anything); contacts' name, e-mail,
phone and notes; needs' title and description (free text may name people); the change history's
old/new values. Not encrypted, because they identify nobody: customer number, kind, status,
company name, industry, region, size, channel, owner, tags, language, important dates (month and
day only, never a year, so not a birth date), external reference, consent flags, insights.
Exact look-ups and the duplicate check use keyed blind indexes (`*_index` columns, HMAC-SHA256 of
the normalised value); the substring search uses only the non-PII `search_name` (organisation
names) and company name.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
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
audit_log = audit_table(metadata)


class EncryptedJSON(EncryptedText):
    """A JSON value stored as one AES-GCM ciphertext; NULL reads as the empty value."""

    cache_ok = True

    def __init__(self, context: str, empty: type[list[Any]] | type[dict[str, Any]]) -> None:
        super().__init__(context)
        self.empty = empty

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return super().process_bind_param(json.dumps(value, default=str), dialect)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        text = super().process_result_value(value, dialect)
        return self.empty() if text is None else json.loads(text)


def enc(context: str) -> EncryptedText:
    return EncryptedText(context)


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

    # -- PII: erased on request, encrypted at rest (see PII_COLUMNS) ----------------------------
    display_name: Mapped[str] = mapped_column(enc("customers.display_name"))
    legal_name: Mapped[str | None] = mapped_column(enc("customers.legal_name"))
    email: Mapped[str | None] = mapped_column(enc("customers.email"))
    phone: Mapped[str | None] = mapped_column(enc("customers.phone"))
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(
        EncryptedJSON("customers.addresses", list), default=list
    )
    notes: Mapped[str | None] = mapped_column(enc("customers.notes"))
    custom_attributes: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON("customers.custom_attributes", dict), default=dict
    )
    # Keyed blind indexes (HMAC) for exact look-up and the duplicate check; see `derived()`.
    email_index: Mapped[str | None] = mapped_column(sa.Text)
    phone_index: Mapped[str | None] = mapped_column(sa.Text)
    display_name_index: Mapped[str | None] = mapped_column(sa.Text)
    name_index: Mapped[str | None] = mapped_column(sa.Text)  # name (+ company) duplicate key
    # The display name of organisations (not personal data), for substring search and sorting.
    search_name: Mapped[str | None] = mapped_column(sa.Text)

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
    name: Mapped[str] = mapped_column(enc("contacts.name"))
    email: Mapped[str | None] = mapped_column(enc("contacts.email"))
    phone: Mapped[str | None] = mapped_column(enc("contacts.phone"))
    notes: Mapped[str | None] = mapped_column(enc("contacts.notes"))
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
    title: Mapped[str] = mapped_column(enc("needs.title"))
    description: Mapped[str | None] = mapped_column(enc("needs.description"))
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
    # {field: {"old": ..., "new": ...}}, encrypted (old values may be personal data); values of
    # PII fields are scrubbed on erasure.
    changes: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("customer_history.changes", dict))

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
