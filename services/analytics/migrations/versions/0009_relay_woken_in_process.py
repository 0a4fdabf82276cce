"""The outbox relay is woken in-process after a commit that wrote events: drop the NOTIFY trigger.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from shared.migration_ops import drop_notify_trigger, restore_notify_trigger

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    drop_notify_trigger()


def downgrade() -> None:
    restore_notify_trigger()
