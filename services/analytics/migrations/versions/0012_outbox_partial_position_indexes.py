"""The outbox's feed-position indexes hold positioned rows only: fewer index entries per event.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from shared.migration_ops import full_position_indexes, partial_position_indexes

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    partial_position_indexes()


def downgrade() -> None:
    full_position_indexes()
