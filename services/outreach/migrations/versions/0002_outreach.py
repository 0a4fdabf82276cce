"""Outreach: customers and consents (projections), templates, messages and their states,
survey links, playbook tasks, the dev mail sink and the append-only audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.audit import create_audit_table, drop_audit_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", UUID(as_uuid=True), primary_key=True)


def upgrade() -> None:
    create_audit_table()
    op.create_table(
        "customers",
        sa.Column("customer_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("owner_id", sa.Text),
        sa.Column("language", sa.Text),
        sa.Column("preferred_channel", sa.Text),
        sa.Column("important_dates", JSONB, nullable=False, server_default="[]"),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("dimensions_at", TZ),
        sa.Column("timezone", sa.Text),
        sa.Column("locale", sa.Text),
        sa.Column("channel", sa.Text),
        sa.Column("churn_level", sa.Text),
        sa.Column("merged_into", UUID(as_uuid=True)),
        sa.Column("erased_at", TZ),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "consents",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "purpose", name="pk_consents"),
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("locale", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("sms_body", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("key", "locale", "version", name="uq_templates_version"),
    )
    op.create_table(
        "messages",
        _id(),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("template_key", sa.Text, nullable=False),
        sa.Column("template_version", sa.Integer),
        sa.Column("locale", sa.Text),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("requested_channel", sa.Text, nullable=False),
        sa.Column("channel", sa.Text),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.Text, unique=True),
        sa.Column("recipient", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("body", sa.Text),
        sa.Column("variables", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ),
        sa.Column("provider_ref", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("sent_at", TZ),
        sa.Column("delivered_at", TZ),
    )
    op.create_index("ix_messages_customer", "messages", ["customer_id", "created_at"])
    op.create_index(
        "ix_messages_due",
        "messages",
        ["next_attempt_at"],
        postgresql_where=sa.text("status IN ('queued', 'deferred')"),
    )
    op.create_index("ix_messages_provider_ref", "messages", ["provider_ref"])
    op.create_table(
        "message_states",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("message_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_message_states_message", "message_states", ["message_id", "id"])
    op.create_table(
        "survey_links",
        _id(),
        sa.Column("invitation_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("message_id", UUID(as_uuid=True)),
        sa.Column("context_type", sa.Text),
        sa.Column("locale", sa.Text),
        sa.Column("greeting_name", sa.Text),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ),
        sa.Column("survey_id", UUID(as_uuid=True)),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_survey_links_customer_id", "survey_links", ["customer_id"])
    op.create_table(
        "tasks",
        _id(),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("dedupe_key", sa.Text, nullable=False, unique=True),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("result_ref", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("done_at", TZ),
    )
    op.create_index("ix_tasks_customer_id", "tasks", ["customer_id"])
    op.create_index(
        "ix_tasks_due", "tasks", ["next_attempt_at"], postgresql_where=sa.text("status = 'pending'")
    )
    op.create_table(
        "dev_mail",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("message_id", UUID(as_uuid=True)),
        sa.Column("customer_id", UUID(as_uuid=True)),
        sa.Column("mail_from", sa.Text),
        sa.Column("recipients", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("raw", sa.Text),
    )
    op.create_index("ix_dev_mail_message_id", "dev_mail", ["message_id"])
    op.create_index("ix_dev_mail_customer_id", "dev_mail", ["customer_id"])


def downgrade() -> None:
    for table in (
        "dev_mail",
        "tasks",
        "survey_links",
        "message_states",
        "messages",
        "templates",
        "consents",
        "customers",
    ):
        op.drop_table(table)
    drop_audit_table()
