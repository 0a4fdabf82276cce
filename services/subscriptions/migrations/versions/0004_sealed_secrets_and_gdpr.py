"""Signing secrets sealed at rest, plaintext idempotency replies dropped, erasure record, audit.

- `subscriptions.secret` / `previous_secret` become AES-GCM ciphertexts bound to their column
  (`shared.crypto`, the keys the service runs with), so a database backup no longer carries
  them; `python -m shared.crypto reencrypt subscriptions` rotates them. Values already sealed
  (not starting with `whsec_`) are left alone, so the step can be re-run; downgrade opens them.
- Stored Idempotency-Key replies were plain text, including the `whsec_` secret of each newly
  created subscription. They are only retry aids: deleted (replies are now stored sealed).
- `erased_customers`: whose deliveries were redacted on `customer.erased`, and when.
- `audit_log`: the append-only audit trail (`GET /audit`).
- An index for finding a customer's deliveries (`ordering_key` is the event's customer).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from shared.audit import create_audit_table, drop_audit_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SECRET_COLUMNS = ("secret", "previous_secret")


def _convert(seal: bool) -> None:
    from shared.crypto import keyring

    ring = keyring()
    conn = op.get_bind()
    for column in SECRET_COLUMNS:
        context = f"subscriptions.{column}"
        plain = f"{column} LIKE 'whsec\\_%'"
        where = plain if seal else f"NOT ({plain})"
        rows = conn.execute(
            sa.text(
                f"SELECT id, {column} AS value FROM subscriptions "
                f"WHERE {column} IS NOT NULL AND {where}"
            )
        ).all()
        if rows:
            conn.execute(
                sa.text(f"UPDATE subscriptions SET {column} = :value WHERE id = :id"),
                [
                    {
                        "id": r.id,
                        "value": ring.seal(r.value, context)
                        if seal
                        else ring.open(r.value, context),
                    }
                    for r in rows
                ],
            )


def upgrade() -> None:
    _convert(seal=True)
    op.execute("DELETE FROM idempotency_keys")
    op.create_table(
        "erased_customers",
        sa.Column("customer_id", UUID(as_uuid=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deliveries_redacted", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("customer_id", name="pk_erased_customers"),
    )
    op.create_index("ix_deliveries_ordering_key", "deliveries", ["ordering_key"])
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
    op.drop_index("ix_deliveries_ordering_key", table_name="deliveries")
    op.drop_table("erased_customers")
    _convert(seal=False)
