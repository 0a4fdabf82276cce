"""Encrypt PII at rest; blind indexes for exact look-up and duplicate checks; non-PII search.

Converts existing rows in Python with `shared.crypto` (the keyring of the environment that runs
the migration, the same one the service uses). JSON columns holding PII become text holding one
ciphertext. The trigram search index now covers only non-PII text (customer number,
organisation names, company name).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.crypto import keyring

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> encrypted columns (the context of each is "<table>.<column>", as in the models)
ENCRYPTED = {
    "customers": (
        "display_name",
        "legal_name",
        "email",
        "phone",
        "notes",
        "addresses",
        "custom_attributes",
    ),
    "contacts": ("name", "email", "phone", "notes"),
    "needs": ("title", "description"),
    "customer_history": ("changes",),
}
JSON_COLUMNS = {
    ("customers", "addresses"),
    ("customers", "custom_attributes"),
    ("customer_history", "changes"),
}
# Keep identical to services.profiles.repository.SEARCH_TEXT so the planner uses the index.
OLD_SEARCH_TEXT = (
    "(display_name || ' ' || coalesce(legal_name, '') || ' ' || customer_number || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(phone, ''))"
)
SEARCH_TEXT = (
    "(customer_number || ' ' || coalesce(search_name, '') || ' ' || coalesce(company_name, ''))"
)
BATCH = 1000


def _convert(table: str, transform: Any, extra: Any = None) -> None:
    """Rewrite every value of the table's encrypted columns with `transform(value, context)`."""
    bind = op.get_bind()
    columns = ENCRYPTED[table]
    select = sa.text(f"SELECT * FROM {table} ORDER BY id")
    rows = [dict(r) for r in bind.execute(select).mappings().all()]
    updates = []
    for row in rows:
        values = {c: None if row[c] is None else transform(row[c], f"{table}.{c}") for c in columns}
        if extra is not None:
            values.update(extra(row))
        updates.append({"row_id": row["id"], **values})
    if not updates:
        return
    assignments = ", ".join(f"{name} = :{name}" for name in updates[0] if name != "row_id")
    statement = sa.text(f"UPDATE {table} SET {assignments} WHERE id = :row_id")
    for start in range(0, len(updates), BATCH):
        bind.execute(statement, updates[start : start + BATCH])


def upgrade() -> None:
    from services.profiles.protection import derived

    ring = keyring()
    op.execute("DROP INDEX ix_customers_search")
    op.drop_index("ix_customers_email", table_name="customers")
    op.drop_index("ix_customers_phone", table_name="customers")
    op.drop_index("ix_customers_name", table_name="customers")
    for table, column in sorted(JSON_COLUMNS):
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column} DROP DEFAULT, "
            f"ALTER COLUMN {column} DROP NOT NULL, "
            f"ALTER COLUMN {column} TYPE text USING {column}::text"
        )
    for name in ("email_index", "phone_index", "display_name_index", "name_index", "search_name"):
        op.add_column("customers", sa.Column(name, sa.Text))

    def seal(value: Any, context: str) -> str:
        return ring.seal(str(value), context)

    def indexes(row: dict[str, Any]) -> dict[str, Any]:
        return derived(row)

    _convert("customers", seal, indexes)
    for table in ("contacts", "needs", "customer_history"):
        _convert(table, seal)

    op.create_index("ix_customers_email_index", "customers", ["email_index"])
    op.create_index("ix_customers_phone_index", "customers", ["phone_index"])
    op.create_index("ix_customers_display_name_index", "customers", ["display_name_index"])
    op.create_index("ix_customers_name_index", "customers", ["name_index"])
    op.create_index("ix_customers_search_name", "customers", ["search_name", "id"])
    op.execute(
        f"CREATE INDEX ix_customers_search ON customers USING gin ({SEARCH_TEXT} gin_trgm_ops)"
    )


def downgrade() -> None:
    ring = keyring()
    op.execute("DROP INDEX ix_customers_search")
    for name in ("email_index", "phone_index", "display_name_index", "name_index"):
        op.drop_index(f"ix_customers_{name}", table_name="customers")
    op.drop_index("ix_customers_search_name", table_name="customers")

    def unseal(value: Any, context: str) -> str:
        return ring.open(value, context)

    for table in ENCRYPTED:
        _convert(table, unseal)
    for name in ("email_index", "phone_index", "display_name_index", "name_index", "search_name"):
        op.drop_column("customers", name)
    for table, column in sorted(JSON_COLUMNS):
        empty = "'{}'" if column != "addresses" else "'[]'"
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column} TYPE jsonb "
            f"USING coalesce({column}, {empty})::jsonb"
        )
        if table == "customers":
            op.execute(
                f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {empty}::jsonb, "
                f"ALTER COLUMN {column} SET NOT NULL"
            )
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_index("ix_customers_phone", "customers", ["phone"])
    op.create_index("ix_customers_name", "customers", [sa.text("lower(display_name)")])
    op.execute(
        f"CREATE INDEX ix_customers_search ON customers USING gin ({OLD_SEARCH_TEXT} gin_trgm_ops)"
    )
