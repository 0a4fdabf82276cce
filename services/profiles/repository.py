"""Queries of the profiles service. Flushes, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import protection
from services.profiles.models import (
    ConsentRecord,
    Contact,
    Customer,
    CustomerInsights,
    HistoryEntry,
    Need,
    table_of,
)
from shared.audit import AUDIT_COLUMNS, AUDIT_ROWS_SELECT
from shared.db import rows_json
from shared.keyset import Keyset, SortKey, parse_datetime
from shared.outbox import OUTBOX_ROWS

SORTS: dict[str, tuple[Any, Any]] = {  # key: (column, parse a cursor value)
    "created_at": (Customer.created_at, parse_datetime),
    "updated_at": (Customer.updated_at, parse_datetime),
    "customer_number": (Customer.customer_number, str),
    # Names of persons are encrypted: this sorts by organisation name, persons last.
    "display_name": (sa.func.coalesce(Customer.search_name, ""), str),
}


def customer_order(sort: str) -> Keyset:
    """The keyset of a `sort` (`-` for descending); the cursor names the sort it belongs to."""
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    column, parse = SORTS[key]
    return Keyset(
        SortKey(column, sort, descending, parse),
        SortKey(Customer.id, "id", descending, uuid.UUID),
    )


HISTORY_ORDER = Keyset(SortKey(HistoryEntry.id, "before", descending=True, parse=int))
PAIR_ORDER = Keyset(
    SortKey(sa.column("a_id"), "a", parse=uuid.UUID),
    SortKey(sa.column("b_id"), "b", parse=uuid.UUID),
)


async def owners_of(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    rows = await session.execute(
        sa.select(Customer.id, Customer.owner_id).where(Customer.id.in_(customer_ids))
    )
    return {cid: owner_id for cid, owner_id in rows.all()}


async def count_of(session: AsyncSession, model: Any, customer_id: uuid.UUID) -> int:
    """How many rows of `model` belong to the customer."""
    count = await session.scalar(sa.select(sa.func.count()).where(model.customer_id == customer_id))
    return int(count or 0)


async def current_consent(
    session: AsyncSession, customer_id: uuid.UUID, purpose: str
) -> bool | None:
    """The latest grant (True) or withdrawal (False) of a purpose; None if never recorded."""
    granted: bool | None = (
        await session.execute(
            sa.select(ConsentRecord.granted)
            .where(ConsentRecord.customer_id == customer_id, ConsentRecord.purpose == purpose)
            .order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return granted


async def get_customer(
    session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False
) -> Customer | None:
    query = sa.select(Customer).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_insights(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, CustomerInsights]:
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(CustomerInsights).where(CustomerInsights.customer_id.in_(ids))
    )
    return {row.customer_id: row for row in rows.scalars()}


async def by_external_ref(session: AsyncSession, external_ref: str) -> Customer | None:
    return (
        await session.execute(sa.select(Customer).where(Customer.external_ref == external_ref))
    ).scalar_one_or_none()


async def find_duplicates(
    session: AsyncSession,
    *,
    kind: str,
    display_name: str | None,
    company_name: str | None,
    email: str | None,
    phone: str | None,
    exclude: Sequence[uuid.UUID] = (),
    limit: int = 20,
    owner_id: str | None = None,
) -> list[tuple[Customer, list[str]]]:
    """Customers (not merged away) with the same e-mail, phone, or name within a company.

    Compares keyed blind indexes: the values themselves are encrypted."""
    email_key = protection.email_index(email)
    phone_key = protection.phone_index(phone)
    name_key = protection.duplicate_name_index(kind, display_name, company_name)
    email_hit = Customer.email_index == email_key if email_key else sa.false()
    phone_hit = Customer.phone_index == phone_key if phone_key else sa.false()
    name_hit: Any = Customer.name_index == name_key if name_key else sa.false()
    matches = sa.select(
        Customer.id, email_hit.label("e"), phone_hit.label("p"), name_hit.label("n")
    ).where(sa.or_(email_hit, phone_hit, name_hit), Customer.status != "merged")
    if exclude:
        matches = matches.where(Customer.id.not_in(exclude))
    if owner_id is not None:
        matches = matches.where(Customer.owner_id == owner_id)
    # OFFSET 0 keeps the ORDER BY ... LIMIT out of the matching scan's plan (as in
    # CREATE_CUSTOMER): a generic plan could walk the created_at index through every customer.
    found = matches.offset(0).subquery()
    query = (
        sa.select(Customer, found.c.e, found.c.p, found.c.n)
        .join(found, found.c.id == Customer.id)
        .order_by(Customer.created_at, Customer.id)
        .limit(limit)
    )
    result = []
    for customer, e, p, n in (await session.execute(query)).all():
        matched = [
            name for name, hit in (("email", e), ("phone", p), ("name_and_company", n)) if hit
        ]
        result.append((customer, matched))
    return result


# Three equi-joins (hash joins, linear in the archive) rather than one OR-join (quadratic).
DUPLICATE_PAIRS_SQL = sa.text(
    """
    WITH live AS (
        SELECT id, email_index, phone_index, name_index
        FROM customers WHERE status <> 'merged' AND erased_at IS NULL
            AND (CAST(:owner AS text) IS NULL OR owner_id = CAST(:owner AS text))
    ), pairs AS (
        SELECT a.id AS a_id, b.id AS b_id, 'email' AS matched
        FROM live a JOIN live b ON a.email_index = b.email_index AND a.id < b.id
        UNION ALL
        SELECT a.id, b.id, 'phone'
        FROM live a JOIN live b ON a.phone_index = b.phone_index AND a.id < b.id
        UNION ALL
        SELECT a.id, b.id, 'name_and_company'
        FROM live a JOIN live b ON a.name_index = b.name_index AND a.id < b.id
    )
    SELECT a_id, b_id, array_agg(matched ORDER BY matched) AS matched_on
    FROM pairs
    WHERE (a_id, b_id) > (CAST(:after_a AS uuid), CAST(:after_b AS uuid))
    GROUP BY a_id, b_id
    ORDER BY a_id, b_id
    LIMIT :limit
    """
)
NIL_UUID = uuid.UUID(int=0)


async def duplicate_pairs(
    session: AsyncSession,
    cursor: str | None,
    limit: int,
    owner_id: str | None = None,
) -> tuple[list[tuple[Customer, Customer, list[str]]], str | None]:
    """A page of pairs of live customers sharing an e-mail, a phone, or a name within a
    company, and the next page's cursor."""
    after_a, after_b = PAIR_ORDER.position(cursor) or (NIL_UUID, NIL_UUID)
    params = {"after_a": after_a, "after_b": after_b, "limit": limit + 1, "owner": owner_id}
    rows = (await session.execute(DUPLICATE_PAIRS_SQL, params)).all()
    ids = {i for row in rows for i in (row.a_id, row.b_id)}
    customers = {
        c.id: c
        for c in (await session.execute(sa.select(Customer).where(Customer.id.in_(ids)))).scalars()
    }
    order = ("email", "phone", "name_and_company")
    pairs = [
        (
            customers[row.a_id],
            customers[row.b_id],
            sorted(row.matched_on, key=order.index),
        )
        for row in rows
    ]
    return PAIR_ORDER.page(pairs, limit, lambda p, name: str((p[0] if name == "a" else p[1]).id))


@dataclass
class CustomerFilter:
    owner_id: str | None = None
    external_ref: str | None = None
    tags: list[str] = field(default_factory=list)
    industry: str | None = None
    region: str | None = None
    kind: str | None = None
    tier: str | None = None
    lifecycle_stage: str | None = None
    statuses: list[str] = field(default_factory=list)
    q: str | None = None
    # Exact matches on personal data (blind indexes) only for callers who may read it, so
    # the search cannot tell anyone else whether an e-mail or phone belongs to a customer.
    q_personal: bool = False
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None


def _history_of(customer_ids: Sequence[uuid.UUID], entity: str | None = None) -> Any:
    query = sa.select(HistoryEntry).where(HistoryEntry.customer_id.in_(customer_ids))
    if entity is not None:
        query = query.where(HistoryEntry.entity == entity)
    return query


async def history_page(
    session: AsyncSession,
    customer_id: uuid.UUID,
    entity: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[HistoryEntry], str | None]:
    """A page of the customer's change history, newest first, and the next page's cursor."""
    query = HISTORY_ORDER.apply(_history_of([customer_id], entity), cursor, limit)
    rows = list((await session.execute(query)).scalars())
    return HISTORY_ORDER.page(rows, limit, lambda e, _: e.id)


async def history(session: AsyncSession, customer_ids: Sequence[uuid.UUID]) -> list[HistoryEntry]:
    """The whole change history of these customers, newest first."""
    query = _history_of(customer_ids).order_by(HistoryEntry.id.desc())
    return list((await session.execute(query)).scalars())


async def merged_into(session: AsyncSession, customer_id: uuid.UUID) -> list[Customer]:
    rows = await session.execute(
        sa.select(Customer).where(Customer.merged_into_id == customer_id).order_by(Customer.id)
    )
    return list(rows.scalars())


async def contacts_of(session: AsyncSession, customer_ids: Sequence[uuid.UUID]) -> list[Contact]:
    rows = await session.execute(
        sa.select(Contact)
        .where(Contact.customer_id.in_(customer_ids))
        .order_by(Contact.created_at, Contact.id)
    )
    return list(rows.scalars())


async def get_contact(
    session: AsyncSession, customer_id: uuid.UUID, contact_id: uuid.UUID, for_update: bool = False
) -> Contact | None:
    query = sa.select(Contact).where(Contact.id == contact_id, Contact.customer_id == customer_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def needs_of(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID], status: str | None = None
) -> list[Need]:
    query = sa.select(Need).where(Need.customer_id.in_(customer_ids))
    if status is not None:
        query = query.where(Need.status == status)
    rows = await session.execute(query.order_by(Need.created_at, Need.id))
    return list(rows.scalars())


async def get_need(
    session: AsyncSession, customer_id: uuid.UUID, need_id: uuid.UUID, for_update: bool = False
) -> Need | None:
    query = sa.select(Need).where(Need.id == need_id, Need.customer_id == customer_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def consent_history(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> list[ConsentRecord]:
    rows = await session.execute(
        sa.select(ConsentRecord)
        .where(ConsentRecord.customer_id.in_(customer_ids))
        .order_by(ConsentRecord.occurred_at.desc(), ConsentRecord.id.desc())
    )
    return list(rows.scalars())


# Each kind of insight: the columns it sets, its time column last. A kind is applied only if it
# is at least as new as the one applied before it (`service.apply_insights`, `write_insights`).
INSIGHT_KINDS: dict[str, tuple[str, ...]] = {
    "tier_changed_at": ("tier", "tier_changed_at"),
    "lifecycle_changed_at": ("lifecycle_stage", "lifecycle_changed_at"),
    "churn_risk_changed_at": (
        "churn_risk_score",
        "churn_risk_level",
        "churn_risk_reasons",
        "churn_risk_changed_at",
    ),
}
INSIGHT_COLUMNS = tuple(name for columns in INSIGHT_KINDS.values() for name in columns)


async def lock_insights(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The customers' insights rows as they are, locked until the transaction ends, in id
    order (so two batches over the same customers cannot deadlock); absent ones left out."""
    table = table_of(CustomerInsights)
    query = (
        sa.select(table)
        .where(table.c.customer_id.in_(sorted(set(customer_ids))))
        .order_by(table.c.customer_id)
        .with_for_update()
    )
    return {row.customer_id: dict(row._mapping) for row in await session.execute(query)}


def _insights_from_json() -> sa.TextClause:
    """One statement for any number of insights rows, handed over as one JSON document (so
    neither the statement nor its compiled form grows with the batch). Each kind replaces
    the stored one only if it is at least as new."""
    columns = ", ".join(INSIGHT_COLUMNS)
    updates = ", ".join(
        f"{name} = CASE WHEN t.{at} IS NULL OR t.{at} <= EXCLUDED.{at} "
        f"THEN EXCLUDED.{name} ELSE t.{name} END"
        for at, names in INSIGHT_KINDS.items()
        for name in names
    )
    return sa.text(
        f"INSERT INTO customer_insights AS t (customer_id, {columns}) "
        f"SELECT customer_id, {columns} FROM jsonb_populate_recordset("
        "NULL::customer_insights, CAST(:rows AS jsonb)) "
        f"ON CONFLICT (customer_id) DO UPDATE SET {updates}"
    )


INSIGHTS_FROM_JSON = _insights_from_json()


async def write_insights(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insights rows (customer_id and every insight column, one row per customer) in one
    statement. A kind stored by a writer that got in first with a newer value stays."""
    if rows:
        await session.execute(INSIGHTS_FROM_JSON, {"rows": rows_json(rows)})


# The columns `service.dimensions` reads: none of them sealed.
DIMENSION_COLUMNS = (
    *("kind", "customer_number", "industry", "region", "company_size", "source_channel"),
    *("owner_id", "tags", "language", "preferred_channel", "status", "important_dates"),
)


async def touch_customers(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID], at: datetime
) -> dict[uuid.UUID, dict[str, Any]]:
    """Move live customers' `updated_at` (not merged away, not erased) in one statement; each
    one's dimension columns. No sealed column is read, so nothing is decrypted."""
    if not customer_ids:
        return {}
    table = table_of(Customer)
    result = await session.execute(
        sa.update(table)
        .where(
            table.c.id.in_(sorted(set(customer_ids))),
            table.c.status != "merged",
            table.c.erased_at.is_(None),
        )
        .values(updated_at=at)
        .returning(table.c.id, *(table.c[name] for name in DIMENSION_COLUMNS))
    )
    return {row.id: {name: row._mapping[name] for name in DIMENSION_COLUMNS} for row in result}


# -- hot paths: hand-written statements on the request's asyncpg connection (`ctx.db()`) -------

# Every column a customer's read model needs, with its insights, in one join.
CUSTOMER_ROW = (
    "SELECT c.id, c.customer_number, c.kind, c.status, c.version, c.external_ref, "
    "c.display_name, c.legal_name, c.email, c.phone, c.addresses, c.notes, c.custom_attributes, "
    "c.company_name, c.industry, c.region, c.company_size, c.source_channel, c.owner_id, c.tags, "
    "c.language, c.preferred_channel, c.important_dates, c.merged_into_id, c.created_at, "
    "c.updated_at, c.archived_at, c.erased_at, c.search_name, i.tier, i.lifecycle_stage, "
    "i.churn_risk_score, "
    "i.churn_risk_level, i.churn_risk_reasons "
    "FROM customers c LEFT JOIN customer_insights i ON i.customer_id = c.id"
)


async def customer_row(
    conn: asyncpg.Connection, customer_id: uuid.UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    """One customer with its insights (sealed columns still sealed), optionally row-locked."""
    lock = " FOR UPDATE OF c" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"{CUSTOMER_ROW} WHERE c.id = $1{lock}", customer_id
    )
    return row


async def lock_identity_keys_on(conn: asyncpg.Connection, keys: Sequence[str]) -> None:
    """`lock_identity_keys` on the driver connection."""
    if keys:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k",
            sorted(set(keys)),
        )


OUTBOX_INSERT = (
    "INSERT INTO outbox (event_id, type, source, subject, partition_key, topic, time, data)"
)

# A create in one statement: the external_ref and duplicate checks (after the caller took the
# identity locks, so their snapshot sees every committed look-alike), and only when both pass
# the customer, its history entry, its event (with the number the database assigns) and the
# audit entry. Returns the created row, or the conflicting ones.
CREATE_CUSTOMER = f"""
WITH dup AS (
    -- OFFSET 0 keeps the ORDER BY ... LIMIT out of the scan's plan: a generic plan walked the
    -- created_at index through every customer, looking for five that match.
    SELECT id, customer_number, owner_id, e, p, n FROM (
        SELECT id, customer_number, owner_id, created_at, email_index = $11 AS e,
               phone_index = $12 AS p, name_index = $14 AS n
        FROM customers
        WHERE (email_index = $11 OR phone_index = $12 OR name_index = $14)
              AND status <> 'merged' AND NOT $27
        OFFSET 0
    ) candidates
    ORDER BY created_at, id LIMIT 5
), ref AS (
    SELECT id, customer_number FROM customers
    WHERE $3::text IS NOT NULL AND external_ref = $3::text
), ins AS (
    INSERT INTO customers (id, kind, external_ref, display_name, legal_name, email, phone,
        addresses, notes, custom_attributes, email_index, phone_index, display_name_index,
        name_index, search_name, company_name, industry, region, company_size, source_channel,
        owner_id, tags, language, preferred_channel, important_dates, created_at, updated_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
        $20, $21, $22, $23, $24, $25::jsonb, $26, $26
    WHERE NOT EXISTS (SELECT 1 FROM ref) AND NOT EXISTS (SELECT 1 FROM dup)
    RETURNING id, customer_number, status, version
), hist AS (
    INSERT INTO customer_history (customer_id, entity, entity_id, action, actor, changed_at,
        changes)
    SELECT id, 'customer', id::text, 'created', $28, $26, $29 FROM ins
), ob AS (
    {OUTBOX_INSERT}
    SELECT x.event_id, x.type, x.source, x.subject, x.partition_key, x.topic, x.time,
        jsonb_set(x.data, '{{dimensions,customer_number}}', to_jsonb(ins.customer_number))
    {OUTBOX_ROWS.format(param="$30")}, ins
), au AS (
    INSERT INTO {AUDIT_COLUMNS} {AUDIT_ROWS_SELECT.format(param="$31")}
    WHERE EXISTS (SELECT 1 FROM ins)
)
SELECT 'created' AS found, id, customer_number, status, version, NULL::text AS owner_id,
    NULL::boolean AS e, NULL::boolean AS p, NULL::boolean AS n FROM ins
UNION ALL SELECT 'external_ref', id, customer_number, NULL, NULL, NULL, NULL, NULL, NULL FROM ref
UNION ALL SELECT 'duplicate', id, customer_number, NULL, NULL, owner_id, e, p, n FROM dup
"""


async def create_customer_row(conn: asyncpg.Connection, *params: Any) -> list[asyncpg.Record]:
    """Run `CREATE_CUSTOMER` with its 31 parameters (see `service.create_customer`)."""
    return list(await conn.fetch(CREATE_CUSTOMER, *params))


async def update_customer_row(
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    at: datetime,
    assignments: dict[str, Any],
    actor: str,
    history_changes: str,
    events: str,
    audit: str,
    *,
    expected_version: int | None = None,
) -> int | None:
    """The changed columns, a version bump, the history entry, the events and the audit entry
    in one statement; the new version. With `expected_version`, only if the row still has
    that version: otherwise nothing is written and the answer is None."""
    params: list[Any] = [customer_id, at, actor, history_changes, events, audit]
    sets = []
    for name, value in assignments.items():
        params.append(value)
        cast = "::jsonb" if name == "important_dates" else ""
        sets.append(f"{name} = ${len(params)}{cast}")
    guard = ""
    if expected_version is not None:
        params.append(expected_version)
        guard = f" AND version = ${len(params)}"
    version: int | None = await conn.fetchval(
        f"""
        WITH up AS (
            UPDATE customers SET {", ".join(sets)}, version = version + 1, updated_at = $2
            WHERE id = $1{guard} RETURNING id, version
        ), hist AS (
            INSERT INTO customer_history (customer_id, entity, entity_id, action, actor,
                changed_at, changes)
            SELECT id, 'customer', id::text, 'updated', $3, $2, $4 FROM up
        ), ob AS (
            {OUTBOX_INSERT}
            SELECT x.event_id, x.type, x.source, x.subject, x.partition_key, x.topic, x.time,
                x.data {OUTBOX_ROWS.format(param="$5")} WHERE EXISTS (SELECT 1 FROM up)
        ), au AS (
            INSERT INTO {AUDIT_COLUMNS} {AUDIT_ROWS_SELECT.format(param="$6")}
            WHERE EXISTS (SELECT 1 FROM up)
        )
        SELECT version FROM up
        """,
        *params,
    )
    return version


# The filtered list as one hand-written statement on the driver connection (the keyset is
# `customer_order`'s: the same cursors, the same order).
SORT_SQL = {
    "created_at": "c.created_at",
    "updated_at": "c.updated_at",
    "customer_number": "c.customer_number",
    "display_name": "coalesce(c.search_name, '')",
}


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_sql(
    filters: CustomerFilter, sort: str, cursor: str | None, limit: int
) -> tuple[str, list[Any]]:
    """The SQL and parameters of a page of `CUSTOMER_ROW`s (with `search_name`)."""
    from services.profiles.schemas import normalise_phone

    params: list[Any] = []  # the search text is the trigram index's (ix_customers_search)

    def param(value: Any, cast: str = "") -> str:
        params.append(value)
        return f"${len(params)}{cast}"

    f = filters
    where = [
        f"c.status = ANY({param(list(f.statuses), '::text[]')})"
        if f.statuses
        else "c.status <> 'merged'"
    ]
    for column, value in (
        ("c.owner_id", f.owner_id),
        ("c.external_ref", f.external_ref),
        ("c.industry", f.industry),
        ("c.region", f.region),
        ("c.kind", f.kind),
        ("i.tier", f.tier),
        ("i.lifecycle_stage", f.lifecycle_stage),
    ):
        if value is not None:
            where.append(f"{column} = {param(value, '::text')}")
    if f.tags:
        where.append(f"c.tags @> {param([t.strip().lower() for t in f.tags], '::text[]')}")
    if f.q:
        text = f.q.strip()
        search = (
            "(c.customer_number || ' ' || coalesce(c.search_name, '') || ' ' || "
            "coalesce(c.company_name, ''))"
        )
        matches = [f"{search} ILIKE {param(_like(text), '::text')}"]
        if f.q_personal:
            index = protection.display_name_index(text)
            matches.append(f"c.display_name_index = {param(index, '::text')}")
            if "@" in text:
                email = protection.email_index(text)
                matches.append(f"c.email_index = {param(email, '::text')}")
            if sum(ch.isdigit() for ch in text) >= 5:
                try:
                    phone = protection.phone_index(normalise_phone(text))
                    matches.append(f"c.phone_index = {param(phone, '::text')}")
                except ValueError:
                    pass  # not a phone number: the other conditions still apply
        where.append("(" + " OR ".join(matches) + ")")
    for column, op, at in (
        ("c.created_at", ">=", f.created_from),
        ("c.created_at", "<", f.created_to),
        ("c.updated_at", ">=", f.updated_from),
        ("c.updated_at", "<", f.updated_to),
    ):
        if at is not None:
            where.append(f"{column} {op} {param(at, '::timestamptz')}")
    order = customer_order(sort)
    key = SORT_SQL[sort.lstrip("-")]
    direction = "DESC" if sort.startswith("-") else "ASC"
    position = order.position(cursor)
    if position is not None:
        after = "<" if sort.startswith("-") else ">"
        casts = {"customer_number": "::text", "display_name": "::text"}
        cast = casts.get(sort.lstrip("-"), "::timestamptz")
        value, last_id = param(position[0], cast), param(position[1], "::uuid")
        where.append(f"({key} {after} {value} OR ({key} = {value} AND c.id {after} {last_id}))")
    sql = (
        f"{CUSTOMER_ROW} "
        f"WHERE {' AND '.join(where)} ORDER BY {key} {direction}, c.id {direction} "
        f"LIMIT {param(limit + 1, '::int')}"
    )
    return sql, params


def record_sort_value(row: Any, name: str) -> Any:
    key = name.lstrip("-")
    if key == "display_name":
        return row["search_name"] or ""
    return row[key]


async def list_customer_rows(
    conn: asyncpg.Connection, filters: CustomerFilter, sort: str, cursor: str | None, limit: int
) -> tuple[list[asyncpg.Record], str | None]:
    """A page of customers (sealed columns still sealed) and the next page's cursor."""
    sql, params = list_sql(filters, sort, cursor, limit)
    rows = await conn.fetch(sql, *params)
    return customer_order(sort).page(list(rows), limit, record_sort_value)
