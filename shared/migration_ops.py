"""Migration steps every service shares: the outbox/inbox tables and the relay's NOTIFY trigger.

The table definitions are frozen here as they were at revision 0001 so that later changes of
`shared.outbox` never rewrite history; change them with a new migration instead.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.outbox import DROP_TRIGGER_SQL, NOTIFY_TRIGGER_SQL


def create_event_log_tables() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("partition_key", sa.Text),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("position", sa.BigInteger),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        sa.UniqueConstraint("position", name="uq_outbox_position"),
    )
    op.create_index(
        "ix_outbox_unsequenced", "outbox", ["id"], postgresql_where=sa.text("position IS NULL")
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["position"],
        postgresql_where=sa.text("position IS NOT NULL AND published_at IS NULL"),
    )
    op.create_index("ix_outbox_type_position", "outbox", ["type", "position"])
    for statement in NOTIFY_TRIGGER_SQL:
        op.execute(statement)
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="processed"),
        sa.Column("error", sa.Text),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )


def drop_notify_trigger() -> None:
    """The relay is woken in-process after a commit that wrote the outbox, and polls for other
    replicas' rows: the per-statement NOTIFY (a commit-time lock and a wake-up of every
    listening replica) is not needed."""
    for statement in DROP_TRIGGER_SQL:
        op.execute(statement)


def restore_notify_trigger() -> None:
    for statement in NOTIFY_TRIGGER_SQL:
        op.execute(statement)


def partial_position_indexes() -> None:
    """The outbox's feed-position indexes hold positioned rows only (`shared.outbox`): an
    inserted event, which has no position yet, writes two index entries fewer. Still unique."""
    op.drop_constraint("uq_outbox_position", "outbox", type_="unique")
    op.drop_index("ix_outbox_type_position", "outbox")
    where = sa.text("position IS NOT NULL")
    op.create_index(
        "uq_outbox_position", "outbox", ["position"], unique=True, postgresql_where=where
    )
    op.create_index(
        "ix_outbox_type_position", "outbox", ["type", "position"], postgresql_where=where
    )


def full_position_indexes() -> None:
    op.drop_index("ix_outbox_type_position", "outbox")
    op.drop_index("uq_outbox_position", "outbox")
    op.create_unique_constraint("uq_outbox_position", "outbox", ["position"])
    op.create_index("ix_outbox_type_position", "outbox", ["type", "position"])


def drop_event_id_unique() -> None:
    """An event's id is made by the service that writes it (a uuid4 in Python, a UUIDv7 in
    SQL), never taken from outside, so a unique index on it guards nothing that can happen,
    and every event paid for it three times: its insert and the relay's two updates
    (sequencing, marking it published) each wrote an entry. Consumers deduplicate by id
    anyway (their inboxes)."""
    op.drop_constraint("uq_outbox_event_id", "outbox", type_="unique")


def restore_event_id_unique() -> None:
    op.create_unique_constraint("uq_outbox_event_id", "outbox", ["event_id"])


def drop_event_log_tables() -> None:
    op.drop_table("inbox")
    for statement in DROP_TRIGGER_SQL:
        op.execute(statement)
    op.drop_table("outbox")


def create_idempotency_table() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("principal", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("body", JSONB),
        sa.Column("headers", JSONB),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("key", "principal", name="pk_idempotency_keys"),
    )


def drop_idempotency_table() -> None:
    op.drop_table("idempotency_keys")
