"""The outbox's feed-position indexes hold positioned rows only: fewer index entries per event.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from shared.migration_ops import full_position_indexes, partial_position_indexes

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    partial_position_indexes()


def downgrade() -> None:
    full_position_indexes()
