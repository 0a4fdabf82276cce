"""Interactions, follow-ups, purchases and refunds, surveys and invitations, customer state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 4)
TZ = sa.DateTime(timezone=True)


def _stamps(*, updated: bool = True) -> list[sa.Column]:  # type: ignore[type-arg]
    columns = [sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now())]
    if updated:
        columns.append(sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()))
    return columns


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("contact_person", sa.Text),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("duration_seconds", sa.Integer),
        sa.Column("subject", sa.Text),
        sa.Column("summary", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("agent_id", sa.Text),
        sa.Column("need_id", UUID(as_uuid=True)),
        sa.Column("purchase_id", UUID(as_uuid=True)),
        sa.Column("complaint_id", UUID(as_uuid=True)),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_interactions"),
    )
    op.create_index(
        "ix_interactions_customer_occurred",
        "interactions",
        ["customer_id", "occurred_at", "id"],
    )
    op.create_index("ix_interactions_occurred", "interactions", ["occurred_at", "id"])
    op.create_index("ix_interactions_agent_occurred", "interactions", ["agent_id", "occurred_at"])

    op.create_table(
        "followups",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("assignee_id", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.Text),
        sa.Column("interaction_id", UUID(as_uuid=True)),
        sa.Column("completed_at", TZ),
        sa.Column("overdue_notified_at", TZ),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_followups"),
        sa.UniqueConstraint("dedupe_key", name="uq_followups_dedupe_key"),
    )
    op.create_index("ix_followups_customer_due", "followups", ["customer_id", "due_at"])
    op.create_index("ix_followups_assignee_due", "followups", ["assignee_id", "due_at"])
    op.create_index(
        "ix_followups_overdue_scan",
        "followups",
        ["due_at"],
        postgresql_where=sa.text("status = 'open' AND overdue_notified_at IS NULL"),
    )

    op.create_table(
        "purchases",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("external_ref", sa.Text, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("cost", MONEY, nullable=False),
        sa.Column("margin", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("items", JSONB, nullable=False),
        sa.Column("refunded_amount", MONEY, nullable=False),
        sa.Column("refunded_margin", MONEY, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_purchases"),
        sa.UniqueConstraint(
            "customer_id", "external_ref", name="uq_purchases_customer_id_external_ref"
        ),
        sa.CheckConstraint("refunded_amount <= amount", name="ck_purchases_refund_within_amount"),
    )
    op.create_index(
        "ix_purchases_customer_occurred", "purchases", ["customer_id", "occurred_at", "id"]
    )
    op.create_index("ix_purchases_occurred", "purchases", ["occurred_at", "id"])

    op.create_table(
        "refunds",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("purchase_id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("margin", MONEY, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("occurred_at", TZ, nullable=False),
        *_stamps(updated=False),
        sa.PrimaryKeyConstraint("id", name="pk_refunds"),
        sa.ForeignKeyConstraint(
            ["purchase_id"], ["purchases.id"], name="fk_refunds_purchase_id_purchases"
        ),
    )
    op.create_index("ix_refunds_purchase_id", "refunds", ["purchase_id"])

    op.create_table(
        "surveys",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("invitation_id", UUID(as_uuid=True)),
        sa.Column("context_type", sa.Text),
        sa.Column("context_id", UUID(as_uuid=True)),
        sa.Column("channel", sa.Text),
        sa.Column("scores", JSONB, nullable=False),
        sa.Column("nps", sa.Integer),
        sa.Column("effort", sa.Integer),
        sa.Column("comment", sa.Text),
        sa.Column("submitted_at", TZ, nullable=False),
        *_stamps(updated=False),
        sa.PrimaryKeyConstraint("id", name="pk_surveys"),
    )
    op.create_index("ix_surveys_customer_submitted", "surveys", ["customer_id", "submitted_at"])

    op.create_table(
        "survey_invitations",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("context_type", sa.Text),
        sa.Column("context_id", UUID(as_uuid=True)),
        sa.Column("channel", sa.Text),
        sa.Column("sent_at", TZ, nullable=False),
        sa.Column("survey_id", UUID(as_uuid=True)),
        sa.PrimaryKeyConstraint("id", name="pk_survey_invitations"),
    )
    op.create_index(
        "ix_survey_invitations_customer_sent", "survey_invitations", ["customer_id", "sent_at"]
    )

    op.create_table(
        "customer_state",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tier", sa.String(1)),
        sa.Column("tier_changed_at", TZ),
        sa.Column("cadence_days_override", sa.Integer),
        sa.Column("owner_id", sa.Text),
        sa.Column("last_contact_at", TZ),
        sa.Column("next_revisit_at", TZ),
        sa.Column("revisit_scheduled_for", TZ),
        sa.Column("important_dates", JSONB, nullable=False, server_default="[]"),
        sa.Column("dimensions_at", TZ),
        sa.Column("care_next_on", sa.Date),
        sa.Column("last_invited_at", TZ),
        sa.Column("merged_into", UUID(as_uuid=True)),
        sa.Column("erased_at", TZ),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_state"),
    )
    op.create_index(
        "ix_customer_state_next_revisit",
        "customer_state",
        ["next_revisit_at"],
        postgresql_where=sa.text("erased_at IS NULL AND merged_into IS NULL"),
    )
    op.create_index(
        "ix_customer_state_care_next",
        "customer_state",
        ["care_next_on"],
        postgresql_where=sa.text("erased_at IS NULL AND merged_into IS NULL"),
    )


def downgrade() -> None:
    for table in (
        "customer_state",
        "survey_invitations",
        "surveys",
        "refunds",
        "purchases",
        "followups",
        "interactions",
    ):
        op.drop_table(table)
