"""Outbox (the event log), inbox (processed event ids) and stored Idempotency-Key replies.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from shared.migration_ops import (
    create_event_log_tables,
    create_idempotency_table,
    drop_event_log_tables,
    drop_idempotency_table,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_log_tables()
    create_idempotency_table()


def downgrade() -> None:
    drop_idempotency_table()
    drop_event_log_tables()
