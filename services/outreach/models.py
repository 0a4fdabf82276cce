"""Tables owned by the outreach service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
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

TZ = sa.DateTime(timezone=True)


def _pii(table: str, column: str) -> EncryptedText:
    """Personal data at rest: AES-GCM ciphertext bound to its column (see shared.crypto)."""
    return EncryptedText(f"{table}.{column}")


class Customer(Model):
    """What outreach knows of a customer: dimensions from profiles' events, and preferences."""

    __tablename__ = "customers"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(sa.Text)
    language: Mapped[str | None] = mapped_column(sa.Text)
    preferred_channel: Mapped[str | None] = mapped_column(sa.Text)
    important_dates: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    status: Mapped[str] = mapped_column(sa.Text, default="active", server_default="active")
    dimensions_at: Mapped[datetime | None] = mapped_column(TZ)
    # Preferences set through this service's API (they win over the profile's dimensions).
    timezone: Mapped[str | None] = mapped_column(sa.Text)
    locale: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    churn_level: Mapped[str | None] = mapped_column(sa.Text)
    merged_into: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    erased_at: Mapped[datetime | None] = mapped_column(TZ)
    version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())


class Consent(Model):
    """The current consent per customer and purpose (projection of `consent.changed`)."""

    __tablename__ = "consents"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    granted: Mapped[bool] = mapped_column(sa.Boolean)
    source: Mapped[str] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(TZ)


class Template(Model):
    """One version of a message template for a purpose and locale."""

    __tablename__ = "templates"
    __table_args__ = (sa.UniqueConstraint("key", "locale", "version", name="uq_templates_version"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    key: Mapped[str] = mapped_column(sa.Text)
    locale: Mapped[str] = mapped_column(sa.Text)
    version: Mapped[int] = mapped_column(sa.Integer)
    purpose: Mapped[str] = mapped_column(sa.Text)
    subject: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    sms_body: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=sa.func.now())


class Message(Model):
    __tablename__ = "messages"
    __table_args__ = (
        sa.Index("ix_messages_customer", "customer_id", "created_at"),
        sa.Index(
            "ix_messages_due",
            "next_attempt_at",
            postgresql_where=sa.text("status IN ('queued', 'deferred')"),
        ),
        sa.Index("ix_messages_provider_ref", "provider_ref"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    template_key: Mapped[str] = mapped_column(sa.Text)
    template_version: Mapped[int | None] = mapped_column(sa.Integer)
    locale: Mapped[str | None] = mapped_column(sa.Text)
    purpose: Mapped[str] = mapped_column(sa.Text)
    requested_channel: Mapped[str] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    urgent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    status: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    trigger: Mapped[str] = mapped_column(sa.Text)
    dedupe_key: Mapped[str | None] = mapped_column(sa.Text, unique=True)
    # The address, the text and the values put into it: personal data, sealed.
    recipient: Mapped[str | None] = mapped_column(_pii("messages", "recipient"))
    subject: Mapped[str | None] = mapped_column(_pii("messages", "subject"))
    body: Mapped[str | None] = mapped_column(_pii("messages", "body"))
    variables: Mapped[str | None] = mapped_column(_pii("messages", "variables"))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZ)
    provider_ref: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    updated_at: Mapped[datetime] = mapped_column(TZ)
    sent_at: Mapped[datetime | None] = mapped_column(TZ)
    delivered_at: Mapped[datetime | None] = mapped_column(TZ)


class MessageState(Model):
    """Every state a message went through, with the reason (its delivery history)."""

    __tablename__ = "message_states"
    __table_args__ = (sa.Index("ix_message_states_message", "message_id", "id"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(TZ)


class SurveyLink(Model):
    """A signed, single-use link to the survey page for one invitation."""

    __tablename__ = "survey_links"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    invitation_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    context_type: Mapped[str | None] = mapped_column(sa.Text)
    locale: Mapped[str | None] = mapped_column(sa.Text)
    greeting_name: Mapped[str | None] = mapped_column(_pii("survey_links", "greeting_name"))
    expires_at: Mapped[datetime] = mapped_column(TZ)
    used_at: Mapped[datetime | None] = mapped_column(TZ)
    survey_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(TZ)


class Task(Model):
    """Work for another service a playbook asked for (a win-back follow-up), retried until done."""

    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_due", "next_attempt_at", postgresql_where=sa.text("status = 'pending'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    dedupe_key: Mapped[str] = mapped_column(sa.Text, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(sa.Text, default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    result_ref: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TZ)
    done_at: Mapped[datetime | None] = mapped_column(TZ)


class DevMail(Model):
    """Mail the dev SMTP sink received (make dev only): what was sent, sealed like any PII."""

    __tablename__ = "dev_mail"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(TZ)
    message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    mail_from: Mapped[str | None] = mapped_column(_pii("dev_mail", "mail_from"))
    recipients: Mapped[str | None] = mapped_column(_pii("dev_mail", "recipients"))
    subject: Mapped[str | None] = mapped_column(_pii("dev_mail", "subject"))
    raw: Mapped[str | None] = mapped_column(_pii("dev_mail", "raw"))
