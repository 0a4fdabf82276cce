"""Outbox (the event log) and inbox (processed event ids).

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from shared.migration_ops import create_event_log_tables, drop_event_log_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_log_tables()


def downgrade() -> None:
    drop_event_log_tables()
