"""The desk's configuration gets a version: intake caches policies, rules and holidays.

A one-row table `desk_config` holds a number that statement triggers on `sla_policies`,
`routing_rules` and `holidays` raise in the transaction that changes them (whatever changes
them: the API, a migration, a hand-written statement). Intake reads the number in the
statement it needs anyway and reloads its in-process copy only when the number moved.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("sla_policies", "routing_rules", "holidays")


def upgrade() -> None:
    op.create_table(
        "desk_config",
        sa.Column("id", sa.SmallInteger, nullable=False, server_default="1"),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_desk_config"),
        sa.CheckConstraint("id = 1", name="ck_desk_config_one_row"),
    )
    op.execute("INSERT INTO desk_config (id, version) VALUES (1, 1)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION kehu_desk_config_changed() RETURNS trigger AS $$
        BEGIN
            UPDATE desk_config SET version = version + 1 WHERE id = 1;
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_desk_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION kehu_desk_config_changed()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_desk_config ON {table}")
    op.execute("DROP FUNCTION IF EXISTS kehu_desk_config_changed()")
    op.drop_table("desk_config")
