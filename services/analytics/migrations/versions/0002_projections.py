"""Read models: per-customer facts and tiers, fact tables, merge aliases, re-rank state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 4)
TS = sa.DateTime(timezone=True)


def _id(name: str, primary: bool = False) -> sa.Column:
    return sa.Column(name, UUID(as_uuid=True), nullable=False, primary_key=primary)


def _zero(name: str, type_: sa.types.TypeEngine = sa.Integer()) -> sa.Column:
    return sa.Column(name, type_, nullable=False, server_default="0")


def _false(name: str) -> sa.Column:
    return sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false())


def upgrade() -> None:
    op.create_table(
        "customer_facts",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        _false("profile_known"),
        sa.Column("kind", sa.Text),
        sa.Column("customer_number", sa.Text),
        sa.Column("industry", sa.Text),
        sa.Column("region", sa.Text),
        sa.Column("company_size", sa.Text),
        sa.Column("source_channel", sa.Text),
        sa.Column("owner_id", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("dimensions_at", TS),
        _false("erased"),
        sa.Column("merged_into", UUID(as_uuid=True)),
        _zero("revenue", MONEY),
        _zero("contribution", MONEY),
        _zero("revenue_recent", MONEY),
        _zero("revenue_prior", MONEY),
        _zero("purchase_count"),
        _zero("purchases_total"),
        sa.Column("first_purchase_at", TS),
        sa.Column("last_purchase_at", TS),
        sa.Column("last_contact_at", TS),
        _zero("interaction_count"),
        _zero("complaints_total"),
        _zero("complaints_open"),
        _zero("sla_breaches_recent"),
        _false("dissatisfied_recent"),
        sa.Column("facts_at", TS),
        sa.Column("tier", sa.String(1)),
        sa.Column("rfm_recency_days", sa.Integer),
        sa.Column("rfm_r", sa.SmallInteger),
        sa.Column("rfm_f", sa.SmallInteger),
        sa.Column("rfm_m", sa.SmallInteger),
        sa.Column("rfm_segment", sa.Text),
        sa.Column("lifecycle_stage", sa.Text),
        sa.Column("churn_score", sa.SmallInteger),
        sa.Column("churn_level", sa.Text),
        sa.Column("churn_reasons", ARRAY(sa.Text)),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_facts"),
        sa.CheckConstraint("tier IN ('A', 'B', 'C')", name="ck_customer_facts_tier"),
        sa.CheckConstraint(
            "churn_score BETWEEN 0 AND 100", name="ck_customer_facts_churn_score_range"
        ),
    )
    op.create_index(
        "ix_customer_facts_rank",
        "customer_facts",
        [sa.text("contribution DESC"), "customer_id"],
    )
    op.create_index(
        "ix_customer_facts_churn", "customer_facts", [sa.text("churn_score DESC"), "customer_id"]
    )

    op.create_table(
        "purchases",
        _id("purchase_id"),
        _id("customer_id"),
        sa.Column("amount", MONEY),
        sa.Column("cost", MONEY),
        sa.Column("margin", MONEY),
        sa.Column("currency", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("occurred_at", TS),
        _false("cancelled"),
        sa.PrimaryKeyConstraint("purchase_id", name="pk_purchases"),
    )
    op.create_index("ix_purchases_customer_id", "purchases", ["customer_id"])

    op.create_table(
        "refunds",
        _id("refund_id"),
        _id("purchase_id"),
        _id("customer_id"),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("margin", MONEY, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("refund_id", name="pk_refunds"),
    )
    op.create_index("ix_refunds_customer_id", "refunds", ["customer_id"])
    op.create_index("ix_refunds_purchase_id", "refunds", ["purchase_id"])

    op.create_table(
        "interactions",
        _id("interaction_id"),
        _id("customer_id"),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("interaction_id", name="pk_interactions"),
    )
    op.create_index("ix_interactions_customer_id", "interactions", ["customer_id"])

    op.create_table(
        "surveys",
        _id("survey_id"),
        _id("customer_id"),
        sa.Column("channel", sa.Text),
        sa.Column("context_type", sa.Text),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("nps", sa.SmallInteger),
        sa.Column("effort", sa.SmallInteger),
        sa.PrimaryKeyConstraint("survey_id", name="pk_surveys"),
    )
    op.create_index("ix_surveys_customer_id", "surveys", ["customer_id"])
    op.create_index("ix_surveys_occurred_at", "surveys", ["occurred_at"])

    op.create_table(
        "survey_answers",
        _id("survey_id"),
        sa.Column("dimension", sa.Text, nullable=False),
        sa.Column("score", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("survey_id", "dimension", name="pk_survey_answers"),
    )

    op.create_table(
        "complaints",
        _id("complaint_id"),
        _id("customer_id"),
        sa.Column("channel", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("severity", sa.Text),
        sa.Column("status", sa.Text),
        sa.Column("status_at", TS),
        sa.Column("received_at", TS),
        sa.Column("first_response_due_at", TS),
        sa.Column("resolution_due_at", TS),
        sa.Column("acknowledged_at", TS),
        sa.Column("first_response_seconds", sa.Integer),
        sa.Column("first_response_met", sa.Boolean),
        _false("first_response_breached"),
        sa.Column("resolved_at", TS),
        sa.Column("resolution_seconds", sa.Integer),
        sa.Column("resolution_met", sa.Boolean),
        _false("resolution_breached"),
        sa.Column("root_cause", sa.Text),
        _zero("reopen_count"),
        sa.Column("escalation_level", sa.Integer),
        sa.Column("closed_at", TS),
        sa.Column("rating", sa.SmallInteger),
        sa.Column("rated_at", TS),
        sa.PrimaryKeyConstraint("complaint_id", name="pk_complaints"),
    )
    op.create_index("ix_complaints_customer_id", "complaints", ["customer_id"])
    op.create_index("ix_complaints_received_at", "complaints", ["received_at"])

    op.create_table(
        "customer_aliases",
        _id("merged_customer_id"),
        _id("survivor_id"),
        sa.PrimaryKeyConstraint("merged_customer_id", name="pk_customer_aliases"),
    )
    op.create_index("ix_customer_aliases_survivor_id", "customer_aliases", ["survivor_id"])

    op.create_table(
        "recompute_state",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("due_at", TS),
        sa.Column("first_requested_at", TS),
        sa.Column("last_run_at", TS),
        sa.Column("last_duration_ms", sa.Integer),
        sa.PrimaryKeyConstraint("name", name="pk_recompute_state"),
    )
    op.execute("INSERT INTO recompute_state (name) VALUES ('rerank')")


def downgrade() -> None:
    for table in (
        "recompute_state",
        "customer_aliases",
        "complaints",
        "survey_answers",
        "surveys",
        "interactions",
        "refunds",
        "purchases",
        "customer_facts",
    ):
        op.drop_table(table)
