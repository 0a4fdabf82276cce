"""The customer archive: customers, contacts, needs, consent, history and insights.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE customer_number_seq")
    # C-000123; grows past six digits instead of truncating like a plain lpad would.
    op.execute(
        """
        CREATE FUNCTION next_customer_number() RETURNS text LANGUAGE sql AS $$
            SELECT 'C-' || lpad(n::text, greatest(6, length(n::text)), '0')
            FROM nextval('customer_number_seq') AS n
        $$
        """
    )
    op.create_table(
        "customers",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "customer_number",
            sa.Text,
            nullable=False,
            server_default=sa.text("next_customer_number()"),
        ),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="active"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("external_ref", sa.Text),
        # PII
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("legal_name", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("addresses", JSONB, nullable=False, server_default="[]"),
        sa.Column("notes", sa.Text),
        sa.Column("custom_attributes", JSONB, nullable=False, server_default="{}"),
        # non-identifying
        sa.Column("company_name", sa.Text),
        sa.Column("industry", sa.Text),
        sa.Column("region", sa.Text),
        sa.Column("company_size", sa.Text),
        sa.Column("source_channel", sa.Text),
        sa.Column("owner_id", sa.Text),
        sa.Column("tags", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("language", sa.Text),
        sa.Column("preferred_channel", sa.Text),
        sa.Column("important_dates", JSONB, nullable=False, server_default="[]"),
        sa.Column("merged_into_id", UUID(as_uuid=True)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("archived_at", TZ),
        sa.Column("erased_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
        sa.UniqueConstraint("customer_number", name="uq_customers_customer_number"),
        sa.UniqueConstraint("external_ref", name="uq_customers_external_ref"),
        sa.CheckConstraint("kind IN ('person', 'organisation')", name="ck_customers_kind"),
        sa.CheckConstraint(
            "status IN ('active', 'archived', 'merged')", name="ck_customers_status"
        ),
    )
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_index("ix_customers_phone", "customers", ["phone"])
    op.create_index("ix_customers_name", "customers", [sa.text("lower(display_name)")])
    op.create_index("ix_customers_owner_id", "customers", ["owner_id"])
    op.create_index("ix_customers_tags", "customers", ["tags"], postgresql_using="gin")
    op.create_index("ix_customers_created", "customers", ["created_at", "id"])
    op.create_index("ix_customers_updated", "customers", ["updated_at", "id"])
    op.create_index("ix_customers_merged_into_id", "customers", ["merged_into_id"])

    op.create_table(
        "contacts",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("role", sa.Text),
        sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("notes", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_contacts_customer_id_customers"
        ),
    )
    op.create_index("ix_contacts_customer_id", "contacts", ["customer_id"])

    op.create_table(
        "needs",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_needs"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_needs_customer_id_customers"
        ),
    )
    op.create_index("ix_needs_customer_id", "needs", ["customer_id"])

    op.create_table(
        "consent_records",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consent_records"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_consent_records_customer_id_customers"
        ),
    )
    op.create_index(
        "ix_consent_records_customer", "consent_records", ["customer_id", "purpose", "id"]
    )

    op.create_table(
        "customer_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("entity", sa.Text, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
        sa.Column("changes", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customer_history"),
    )
    op.create_index("ix_customer_history_customer", "customer_history", ["customer_id", "id"])

    op.create_table(
        "customer_insights",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("tier", sa.Text),
        sa.Column("tier_changed_at", TZ),
        sa.Column("lifecycle_stage", sa.Text),
        sa.Column("lifecycle_changed_at", TZ),
        sa.Column("churn_risk_score", sa.Integer),
        sa.Column("churn_risk_level", sa.Text),
        sa.Column("churn_risk_reasons", JSONB),
        sa.Column("churn_risk_changed_at", TZ),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customer_insights"),
    )


def downgrade() -> None:
    for table in (
        "customer_insights",
        "customer_history",
        "consent_records",
        "needs",
        "contacts",
        "customers",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION next_customer_number()")
    op.execute("DROP SEQUENCE customer_number_seq")
