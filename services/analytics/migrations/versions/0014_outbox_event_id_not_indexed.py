"""The outbox's event id is no longer indexed: three index entries fewer per event.

See `shared.migration_ops.drop_event_id_unique` for why the unique index guarded nothing.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from shared.migration_ops import drop_event_id_unique, restore_event_id_unique

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    drop_event_id_unique()


def downgrade() -> None:
    restore_event_id_unique()
