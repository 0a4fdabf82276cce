"""Complaints, their transitions, notes and actions; agents; customer tiers and merges.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("complainant_name", sa.Text),
        sa.Column("complainant_email", sa.Text),
        sa.Column("complainant_phone", sa.Text),
        sa.Column("subject", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("related_purchase_id", UUID(as_uuid=True)),
        sa.Column("related_interaction_id", UUID(as_uuid=True)),
        sa.Column("assignee", sa.Text),
        sa.Column("team", sa.Text),
        sa.Column("escalation_level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("first_response_at", TZ),
        sa.Column("resolved_at", TZ),
        sa.Column("closed_at", TZ),
        sa.Column("paused_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("paused_since", TZ),
        sa.Column("first_response_target_s", sa.Integer, nullable=False),
        sa.Column("resolution_target_s", sa.Integer, nullable=False),
        sa.Column("first_response_due_at", TZ, nullable=False),
        sa.Column("first_response_warn_at", TZ, nullable=False),
        sa.Column("resolution_due_at", TZ, nullable=False),
        sa.Column("resolution_warn_at", TZ, nullable=False),
        sa.Column("first_response_warned", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("first_response_breached", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("resolution_warned", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("resolution_breached", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("sla_status", sa.Text, nullable=False, server_default="on_track"),
        sa.Column("next_sla_check_at", TZ),
        sa.Column("next_due_at", TZ),
        sa.Column("root_cause_category", sa.Text),
        sa.Column("root_cause", sa.Text),
        sa.Column("resolution", sa.Text),
        sa.Column("rating", sa.SmallInteger),
        sa.Column("rating_comment", sa.Text),
        sa.Column("rated_at", TZ),
        sa.Column("revisit_due_at", TZ),
        sa.Column("revisit_outcome", sa.Text),
        sa.Column("reopen_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("erased_at", TZ),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_complaints"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_complaints_rating_range"),
    )
    op.create_index("ix_complaints_customer_id", "complaints", ["customer_id"])
    op.create_index(
        "ix_complaints_next_sla_check_at",
        "complaints",
        ["next_sla_check_at"],
        postgresql_where=sa.text("next_sla_check_at IS NOT NULL"),
    )
    op.create_index(
        "ix_complaints_queue", "complaints", [sa.text("coalesce(next_due_at, 'infinity')"), "id"]
    )
    op.create_index("ix_complaints_assignee_status", "complaints", ["assignee", "status"])

    op.create_table(
        "complaint_transitions",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("complaint_id", UUID(as_uuid=True), nullable=False),
        sa.Column("from_status", sa.Text),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_transitions"),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name="fk_complaint_transitions_complaint_id_complaints",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_complaint_transitions_complaint_id", "complaint_transitions", ["complaint_id"]
    )
    op.create_table(
        "complaint_notes",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("complaint_id", UUID(as_uuid=True), nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_notes"),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name="fk_complaint_notes_complaint_id_complaints",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_complaint_notes_complaint_id", "complaint_notes", ["complaint_id"])
    op.create_table(
        "complaint_actions",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("complaint_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_actions"),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name="fk_complaint_actions_complaint_id_complaints",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_complaint_actions_complaint_id", "complaint_actions", ["complaint_id"])
    op.create_table(
        "agents",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("team", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default="true"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
    )
    op.create_index("ix_agents_team", "agents", ["team"])
    op.create_table(
        "customer_tiers",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("as_of", TZ, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_tiers"),
    )
    op.create_table(
        "customer_redirects",
        sa.Column("merged_id", UUID(as_uuid=True), nullable=False),
        sa.Column("survivor_id", UUID(as_uuid=True), nullable=False),
        sa.PrimaryKeyConstraint("merged_id", name="pk_customer_redirects"),
    )


def downgrade() -> None:
    for table in (
        "customer_redirects",
        "customer_tiers",
        "agents",
        "complaint_actions",
        "complaint_notes",
        "complaint_transitions",
        "complaints",
    ):
        op.drop_table(table)
