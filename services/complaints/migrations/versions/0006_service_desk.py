"""The service desk: cases of every type in the complaints table, SLA policies, holidays,
teams with skills, routing rules, canned responses and human references.

Data migration: every existing row is a complaint-type case (`type = 'complaint'`), gets its
human reference (`CP-<year>-<sequence>` in order of receipt, per year; the counters continue
from there) and the default SLA policy of its severity and tier (today's matrix, which stays
the default after the policies set with `PUT /sla-policies`). Downgrade drops what was added
(cases of other types with it: the older schema cannot hold them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    add = op.add_column
    add("complaints", sa.Column("type", sa.Text(), nullable=False, server_default="complaint"))
    add("complaints", sa.Column("subtype", sa.Text()))
    add("complaints", sa.Column("reference", sa.Text()))
    add("complaints", sa.Column("claim_kind", sa.Text()))
    add("complaints", sa.Column("amount_claimed", sa.Numeric(18, 4)))
    add("complaints", sa.Column("currency", sa.Text()))
    add("complaints", sa.Column("delivered_at", TZ))
    add("complaints", sa.Column("return_window_days", sa.Integer()))
    add("complaints", sa.Column("window_overridden_by", sa.Text()))
    add("complaints", sa.Column("queue", sa.Text()))
    add(
        "complaints",
        sa.Column("critical_escalated", sa.Boolean(), nullable=False, server_default="false"),
    )
    add("complaints", sa.Column("sla_policy", sa.Text(), nullable=False, server_default="default"))
    add("complaints", sa.Column("sla_calendar", JSONB()))
    add(
        "complaints",
        sa.Column(
            "pause_states",
            ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("ARRAY['waiting_on_customer']"),
        ),
    )
    add("complaints", sa.Column("outcome", sa.Text()))
    add("complaints", sa.Column("revisit_followup_id", UUID(as_uuid=True)))
    op.add_column(
        "agents",
        sa.Column("skills", ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'")),
    )

    # Existing complaints: references in order of receipt per year, their default policy, and
    # the critical ones already escalated on intake.
    op.execute(
        """
        UPDATE complaints c SET
            reference = 'CP-' || n.year || '-' || lpad(n.seq::text, 6, '0'),
            sla_policy = 'default/' || c.severity || '/' || c.tier,
            critical_escalated = (c.severity = 'critical' AND c.escalation_level >= 2)
        FROM (
            SELECT id, extract(year FROM received_at AT TIME ZONE 'UTC')::int AS year,
                   row_number() OVER (
                       PARTITION BY extract(year FROM received_at AT TIME ZONE 'UTC')
                       ORDER BY received_at, id
                   ) AS seq
            FROM complaints
        ) n
        WHERE n.id = c.id
        """
    )
    op.alter_column("complaints", "reference", nullable=False)
    op.create_unique_constraint("uq_complaints_reference", "complaints", ["reference"])
    op.create_index("ix_complaints_type", "complaints", ["type"])

    op.create_table(
        "reference_counters",
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", "year", name="pk_reference_counters"),
    )
    op.execute(
        """
        INSERT INTO reference_counters (prefix, year, last)
        SELECT 'CP', extract(year FROM received_at AT TIME ZONE 'UTC')::int, count(*)
        FROM complaints GROUP BY 2
        """
    )
    op.create_table(
        "teams",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("lead", sa.Text()),
        sa.Column("description", sa.Text()),
        sa.Column("updated_at", TZ, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_teams"),
    )
    op.create_table(
        "routing_rules",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text()),
        sa.Column("subtype", sa.Text()),
        sa.Column("category", sa.Text()),
        sa.Column("tier", sa.Text()),
        sa.Column("team", sa.Text(), nullable=False),
        sa.Column("skill", sa.Text()),
        sa.PrimaryKeyConstraint("position", name="pk_routing_rules"),
    )
    op.create_table(
        "sla_policies",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("type", sa.Text()),
        sa.Column("subtype", sa.Text()),
        sa.Column("severity", sa.Text()),
        sa.Column("tier", sa.Text()),
        sa.Column("channel", sa.Text()),
        sa.Column("first_response_s", sa.Integer(), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("pause_states", ARRAY(sa.Text()), nullable=False),
        sa.Column("calendar", JSONB()),
        sa.PrimaryKeyConstraint("position", name="pk_sla_policies"),
        sa.UniqueConstraint("name", name="uq_sla_policies_name"),
    )
    op.create_table(
        "holidays",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_holidays"),
    )
    op.create_table(
        "canned_responses",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text()),
        sa.Column("locale", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canned_responses"),
    )
    op.create_index("ix_canned_responses_type_locale", "canned_responses", ["type", "locale"])


def downgrade() -> None:
    op.drop_index("ix_canned_responses_type_locale", "canned_responses")
    for table in (
        "canned_responses",
        "holidays",
        "sla_policies",
        "routing_rules",
        "teams",
        "reference_counters",
    ):
        op.drop_table(table)
    op.execute("DELETE FROM complaints WHERE type <> 'complaint'")
    op.drop_index("ix_complaints_type", "complaints")
    op.drop_constraint("uq_complaints_reference", "complaints")
    op.drop_column("agents", "skills")
    for column in (
        "revisit_followup_id",
        "outcome",
        "pause_states",
        "sla_calendar",
        "sla_policy",
        "critical_escalated",
        "queue",
        "window_overridden_by",
        "return_window_days",
        "delivered_at",
        "currency",
        "amount_claimed",
        "claim_kind",
        "reference",
        "subtype",
        "type",
    ):
        op.drop_column("complaints", column)
