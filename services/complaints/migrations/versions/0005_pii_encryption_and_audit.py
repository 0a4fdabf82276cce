"""Personal data encrypted at rest (existing rows converted) and the append-only audit log.

Complainant name, e-mail and phone, subject, description, root cause, resolution, rating
comment, transition and investigation notes and action descriptions become
AES-GCM ciphertexts bound to their column (`shared.crypto`, the same keys the service runs
with). The conversion is a data migration: rows already sealed are left alone, so it can be
re-run; downgrade decrypts them again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.audit import create_audit_table, drop_audit_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PII = {
    "complaints": (
        "complainant_name",
        "complainant_email",
        "complainant_phone",
        "subject",
        "description",
        "root_cause",
        "resolution",
        "rating_comment",
    ),
    "complaint_transitions": ("note",),
    "complaint_notes": ("body",),
    "complaint_actions": ("description",),
}
SEALED = r"^k1\.[A-Za-z0-9]+\.[A-Za-z0-9_=-]+$"
BATCH = 1000


def _convert(seal: bool) -> None:
    from shared.crypto import keyring

    ring = keyring()
    conn = op.get_bind()
    for table, columns in PII.items():
        for column in columns:
            context = f"{table}.{column}"
            match = "!~" if seal else "~"
            after: Any = None
            while True:
                rows = conn.execute(
                    sa.text(
                        f"SELECT id, {column} AS value FROM {table} "
                        f"WHERE {column} IS NOT NULL AND {column} {match} :sealed "
                        + ("AND id > :after " if after is not None else "")
                        + "ORDER BY id LIMIT :batch"
                    ),
                    {"sealed": SEALED, "batch": BATCH}
                    | ({"after": after} if after is not None else {}),
                ).all()
                if not rows:
                    break
                conn.execute(
                    sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"),
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
                after = rows[-1].id


def upgrade() -> None:
    create_audit_table()
    _convert(seal=True)


def downgrade() -> None:
    _convert(seal=False)
    drop_audit_table()
