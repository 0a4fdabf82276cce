"""Append-only audit log: every read of unmasked PII and every change, with who, when and why.

Each service keeps its own `audit_log` table (a trigger refuses UPDATE and DELETE) and serves it
at `GET /audit` (scope `audit:read`), filterable by customer and by actor. Callers may state why
they access data in an `X-Purpose` header; it is recorded with the entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from alembic import op
from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal, require
from shared.db import SessionDep
from shared.keyset import Keyset, SortKey
from shared.pagination import Page

ACTIONS = ("read_pii", "create", "update", "delete", "export", "erase", "merge", "import")


def audit_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "audit_log",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("resource_id", sa.Text),
        sa.Column("customer_id", sa.Text),
        sa.Column("purpose", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("fields", JSONB, nullable=False, server_default="[]"),
        sa.Index("ix_audit_log_customer_id", "customer_id", "id"),
        sa.Index("ix_audit_log_actor", "actor", "id"),
    )


def create_audit_table() -> None:
    """Migration step: the table and the trigger that makes it append-only."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("resource_id", sa.Text),
        sa.Column("customer_id", sa.Text),
        sa.Column("purpose", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("fields", JSONB, nullable=False, server_default="[]"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_customer_id", "audit_log", ["customer_id", "id"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "id"])
    op.execute(
        """
        CREATE OR REPLACE FUNCTION kehu_audit_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only';
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION kehu_audit_append_only()"
    )


def drop_audit_table() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS kehu_audit_append_only()")
    op.drop_table("audit_log")


# Insert audit entries given as one JSON array (one statement for any number of entries; a
# data-modifying CTE can take the same `SELECT ... FROM jsonb_to_recordset(...)` part).
AUDIT_ROWS_SELECT = (
    "SELECT x.actor, x.role, x.action, x.resource, x.resource_id, x.customer_id, x.purpose, "
    "x.request_id, coalesce(x.fields, '[]'::jsonb) "
    "FROM jsonb_to_recordset({param}::jsonb) AS x(actor text, role text, action text, "
    "resource text, resource_id text, customer_id text, purpose text, request_id text, "
    "fields jsonb)"
)
AUDIT_COLUMNS = (
    "audit_log (actor, role, action, resource, resource_id, customer_id, purpose, request_id, "
    "fields)"
)
AUDIT_FROM_JSON = f"INSERT INTO {AUDIT_COLUMNS} {AUDIT_ROWS_SELECT.format(param='$1')}"
AUDIT_FROM_JSON_TEXT = sa.text(
    f"INSERT INTO {AUDIT_COLUMNS} {AUDIT_ROWS_SELECT.format(param='CAST(:entries AS text)')}"
)


def audit_json(entries: list[dict[str, Any]]) -> str:
    """Entries (dicts of the audit columns) as the JSON array `AUDIT_ROWS_SELECT` reads."""
    return orjson.dumps(entries, default=str).decode()


async def record(
    session: AsyncSession,
    table: sa.Table,
    request: Request | None,
    principal: Principal,
    action: str,
    resource: str,
    *,
    resource_id: Any = None,
    customer_id: Any = None,
    fields: list[str] | None = None,
) -> None:
    """Append one entry in the caller's transaction (so it exists iff the access happened)."""
    purpose = request.headers.get("x-purpose") if request is not None else None
    await session.execute(
        sa.insert(table).values(
            actor=principal.subject,
            role=principal.role,
            action=action,
            resource=resource,
            resource_id=None if resource_id is None else str(resource_id),
            customer_id=None if customer_id is None else str(customer_id),
            purpose=purpose[:500] if purpose else None,
            request_id=correlation_id.get(),
            fields=fields or [],
        )
    )


async def record_reads(
    session: AsyncSession,
    table: sa.Table,
    request: Request,
    principal: Principal,
    records: Iterable[tuple[str, Any, Any]],
    pii_fields: Mapping[str, Sequence[str]],
) -> None:
    """Log the unmasked personal data a response carries: one `read_pii` entry per customer.

    `records` are (resource, ORM record, customer id) triples; a record is logged with the
    fields of `pii_fields[resource]` it actually holds, and skipped when it holds none.
    """
    if not principal.has("pii:read"):
        return
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    fields: dict[tuple[str, str], set[str]] = defaultdict(set)
    for resource, record, customer_id in records:
        present = [f for f in pii_fields[resource] if getattr(record, f, None) is not None]
        if present:
            key = (resource, str(customer_id))
            grouped[key].append(str(record.id))
            fields[key].update(present)
    if not grouped:
        return
    purpose = request.headers.get("x-purpose")
    await session.execute(
        sa.insert(table),
        [
            {
                "actor": principal.subject,
                "role": principal.role,
                "action": "read_pii",
                "resource": resource,
                "resource_id": ",".join(dict.fromkeys(ids)),
                "customer_id": customer_id,
                "purpose": purpose[:500] if purpose else None,
                "request_id": correlation_id.get(),
                "fields": sorted(fields[(resource, customer_id)]),
            }
            for (resource, customer_id), ids in grouped.items()
        ],
    )


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str = Field(description="The token subject that acted.")
    role: str | None
    action: str = Field(examples=["read_pii"], description=f"One of {', '.join(ACTIONS)}.")
    resource: str = Field(examples=["customer"])
    resource_id: str | None
    customer_id: str | None
    purpose: str | None = Field(description="The `X-Purpose` the caller gave, if any.")
    request_id: str | None
    fields: list[str] = Field(description="The fields read or changed.")


def audit_router(table: sa.Table) -> APIRouter:
    router = APIRouter(tags=["audit"])

    @router.get("/audit", summary="Query the audit log", response_model=Page[AuditEntry])
    async def query(
        session: SessionDep,
        _: Annotated[Principal, require("audit:read")],
        customer_id: UUID | None = None,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        action: Annotated[str | None, Query(max_length=50)] = None,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Page[AuditEntry]:
        """Who read unmasked personal data or changed what, newest first (scope `audit:read`).

        Filter by `customer_id` and/or `actor`; page with `cursor`. Entries cannot be changed
        or deleted.
        """
        query = sa.select(table)
        if customer_id is not None:
            query = query.where(table.c.customer_id == str(customer_id))
        if actor is not None:
            query = query.where(table.c.actor == actor)
        if action is not None:
            query = query.where(table.c.action == action)
        order = Keyset(SortKey(table.c.id, "id", descending=True, parse=int))
        rows = (await session.execute(order.apply(query, cursor, limit))).all()
        found, next_cursor = order.page(rows, limit)
        items = [AuditEntry.model_validate(row._mapping) for row in found]
        return Page[AuditEntry](items=items, next_cursor=next_cursor)

    return router
