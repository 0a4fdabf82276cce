"""Trigram index for the text search on name, number, e-mail and phone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Keep identical to services.profiles.repository.SEARCH_TEXT so the planner uses the index.
SEARCH_TEXT = (
    "(display_name || ' ' || coalesce(legal_name, '') || ' ' || customer_number || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(phone, ''))"
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        f"CREATE INDEX ix_customers_search ON customers USING gin ({SEARCH_TEXT} gin_trgm_ops)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_customers_search")
