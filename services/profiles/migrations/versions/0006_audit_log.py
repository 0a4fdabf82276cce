"""Append-only audit log of PII reads and changes (`shared.audit`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from shared.audit import create_audit_table, drop_audit_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
