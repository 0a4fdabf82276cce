"""Queries of the interactions service. Flushes, never commits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.interactions.config import Settings
from services.interactions.models import (
    CustomerState,
    Followup,
    FxRate,
    Interaction,
    Model,
    Purchase,
    Refund,
    Survey,
    SurveyInvitation,
    TimelineRecord,
)
from shared.audit import AUDIT_COLUMNS, AUDIT_ROWS_SELECT
from shared.keyset import Keyset, SortKey, parse_datetime
from shared.outbox import OUTBOX_ROWS

M = TypeVar("M", bound=Model)
# Merges can chain (A into B, later B into C); follow a few hops, never loop forever.
MAX_MERGE_HOPS = 5


async def get(
    session: AsyncSession, model: type[M], id_: uuid.UUID, *, lock: bool = False
) -> M | None:
    return await session.get(model, id_, with_for_update=lock)


# -- lists: filters and keyset paging ----------------------------------------------------------

Window = tuple[datetime | None, datetime | None]  # [from, to)


def _newest_first(time_col: Any, id_col: Any, *, descending: bool = True) -> Keyset:
    return Keyset(
        SortKey(time_col, "t", descending=descending, parse=parse_datetime),
        SortKey(id_col, "id", descending=descending, parse=uuid.UUID),
    )


INTERACTION_ORDER = _newest_first(Interaction.occurred_at, Interaction.id)
FOLLOWUP_ORDER = _newest_first(Followup.due_at, Followup.id, descending=False)
PURCHASE_ORDER = _newest_first(Purchase.occurred_at, Purchase.id)
SURVEY_ORDER = _newest_first(Survey.submitted_at, Survey.id)


def _where(
    *conditions: sa.ColumnElement[bool] | None, column: Any = None, window: Window = (None, None)
) -> list[sa.ColumnElement[bool]]:
    """The conditions given (None: no filter), and `column` within [from, to)."""
    since, until = window
    return [
        c
        for c in (
            *conditions,
            None if since is None else column >= since,
            None if until is None else column < until,
        )
        if c is not None
    ]


def _eq(column: Any, value: Any) -> sa.ColumnElement[bool] | None:
    return None if value is None else column == value


async def _page(
    session: AsyncSession,
    model: type[M],
    order: Keyset,
    conditions: list[sa.ColumnElement[bool]],
    cursor: str | None,
    limit: int,
) -> tuple[list[M], str | None]:
    """One keyset page of `model` rows matching `conditions`, and the next page's cursor."""
    query = order.apply(sa.select(model).where(*conditions), cursor, limit)
    rows = (await session.scalars(query)).all()
    # The cursor names its keys `t` and `id` whatever the columns are called.
    attribute = {key.name: key.column.key for key in order.keys}
    return order.page(rows, limit, lambda row, name: getattr(row, attribute[name]))


async def list_interactions(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID | None,
    channels: Sequence[str] | None,
    direction: str | None,
    agent_id: str | None,
    outcome: str | None,
    window: Window,
    cursor: str | None,
    limit: int,
) -> tuple[list[Interaction], str | None]:
    i = Interaction
    conditions = _where(
        _eq(i.customer_id, customer_id),
        i.channel.in_(channels) if channels else None,
        _eq(i.direction, direction),
        _eq(i.agent_id, agent_id),
        _eq(i.outcome, outcome),
        column=i.occurred_at,
        window=window,
    )
    return await _page(session, Interaction, INTERACTION_ORDER, conditions, cursor, limit)


async def list_followups(
    session: AsyncSession,
    *,
    now: datetime,
    customer_id: uuid.UUID | None,
    assignee_id: str | None,
    status: str | None,
    kind: str | None,
    overdue: bool | None,
    window: Window,
    cursor: str | None,
    limit: int,
) -> tuple[list[Followup], str | None]:
    f = Followup
    late = sa.and_(f.status == "open", f.due_at < now)
    conditions = _where(
        _eq(f.customer_id, customer_id),
        _eq(f.assignee_id, assignee_id),
        _eq(f.status, status),
        _eq(f.kind, kind),
        None if overdue is None else (late if overdue else sa.not_(late)),
        column=f.due_at,
        window=window,
    )
    return await _page(session, Followup, FOLLOWUP_ORDER, conditions, cursor, limit)


async def agenda(
    session: AsyncSession, assignee_id: str, bounds: Sequence[datetime], limit: int
) -> list[list[Followup]]:
    """An agent's open follow-ups due in each [bounds[n], bounds[n+1]), earliest first; the
    first group is everything due before bounds[0]."""
    f = Followup
    groups = []
    for start, end in zip([None, *bounds[:-1]], bounds, strict=True):
        query = (
            sa.select(f)
            .where(
                *_where(
                    f.assignee_id == assignee_id,
                    f.status == "open",
                    column=f.due_at,
                    window=(start, end),
                )
            )
            .order_by(f.due_at, f.id)
            .limit(limit)
        )
        groups.append(list((await session.scalars(query)).all()))
    return groups


async def list_purchases(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID | None,
    status: str | None,
    external_ref: str | None,
    window: Window,
    cursor: str | None,
    limit: int,
) -> tuple[list[Purchase], str | None]:
    p = Purchase
    conditions = _where(
        _eq(p.customer_id, customer_id),
        _eq(p.status, status),
        _eq(p.external_ref, external_ref),
        column=p.occurred_at,
        window=window,
    )
    return await _page(session, Purchase, PURCHASE_ORDER, conditions, cursor, limit)


async def list_surveys(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID | None,
    context_type: str | None,
    context_id: uuid.UUID | None,
    window: Window,
    cursor: str | None,
    limit: int,
) -> tuple[list[Survey], str | None]:
    s = Survey
    conditions = _where(
        _eq(s.customer_id, customer_id),
        _eq(s.context_type, context_type),
        _eq(s.context_id, context_id),
        column=s.submitted_at,
        window=window,
    )
    return await _page(session, Survey, SURVEY_ORDER, conditions, cursor, limit)


# -- customer state -----------------------------------------------------------------------------


async def ensure_state(session: AsyncSession, customer_id: uuid.UUID) -> None:
    await session.execute(
        insert(CustomerState).values(customer_id=customer_id).on_conflict_do_nothing()
    )


async def resolve_customers(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """Each id's surviving customer id, in one query (and one more per merged id)."""
    rows = await session.execute(
        sa.select(CustomerState.customer_id).where(
            CustomerState.customer_id.in_(customer_ids), CustomerState.merged_into.is_not(None)
        )
    )
    merged = set(rows.scalars())
    return {
        cid: (await resolve_customer(session, cid)) if cid in merged else cid
        for cid in customer_ids
    }


async def resolve_customer(session: AsyncSession, customer_id: uuid.UUID) -> uuid.UUID:
    """The surviving customer id: records for a merged duplicate go to its survivor."""
    current = customer_id
    for _ in range(MAX_MERGE_HOPS):
        merged_into = await session.scalar(
            sa.select(CustomerState.merged_into).where(CustomerState.customer_id == current)
        )
        if merged_into is None:
            return current
        current = merged_into
    return current


async def customer_status(
    session: AsyncSession, customer_id: uuid.UUID
) -> tuple[uuid.UUID, datetime | None]:
    """(survivor id, erased_at) in one query for the common case of an unmerged customer."""
    s = CustomerState
    row = (
        await session.execute(
            sa.select(s.merged_into, s.erased_at).where(s.customer_id == customer_id)
        )
    ).first()
    if row is None:
        return customer_id, None
    if row.merged_into is None:
        return customer_id, row.erased_at
    survivor = await resolve_customer(session, row.merged_into)
    erased = await session.scalar(sa.select(s.erased_at).where(s.customer_id == survivor))
    return survivor, erased


async def note_contact(
    session: AsyncSession, settings: Settings, customer_id: uuid.UUID, at: datetime
) -> bool:
    """A new answered contact: move last contact forward and re-plan the revisit, one statement.

    Returns whether the service ever planned a revisit for this customer (one may be open).
    """
    s = CustomerState
    stmt = insert(s).values(
        customer_id=customer_id,
        last_contact_at=at,
        next_revisit_at=at + timedelta(days=settings.cadence_days(None)),
    )
    last = sa.func.greatest(s.last_contact_at, stmt.excluded.last_contact_at)
    result = await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[s.customer_id],
            set_={
                "last_contact_at": last,
                "next_revisit_at": last
                + sa.func.make_interval(0, 0, 0, cadence_days_expr(settings)),
                "version": s.version + 1,
                "updated_at": sa.func.now(),
            },
        ).returning(s.revisit_scheduled_for.is_not(None))
    )
    return bool(result.scalar_one())


async def lock_state(session: AsyncSession, customer_id: uuid.UUID) -> CustomerState:
    await ensure_state(session, customer_id)
    state = await session.get(
        CustomerState, customer_id, with_for_update=True, populate_existing=True
    )
    assert state is not None
    return state


def cadence_days_expr(settings: Settings) -> sa.ColumnElement[int]:
    tiers = sa.case(
        (CustomerState.tier == "A", settings.cadence_a_days),
        (CustomerState.tier == "B", settings.cadence_b_days),
        (CustomerState.tier == "C", settings.cadence_c_days),
        else_=settings.cadence_days(None),
    )
    return sa.func.coalesce(CustomerState.cadence_days_override, tiers)


async def refresh_contact(
    session: AsyncSession, settings: Settings, customer_ids: Sequence[uuid.UUID]
) -> None:
    """Recompute last contact (latest answered interaction) and the next revisit date."""
    if not customer_ids:
        return
    for customer_id in customer_ids:
        await ensure_state(session, customer_id)
    last_contact = (
        sa.select(sa.func.max(Interaction.occurred_at))
        .where(
            Interaction.customer_id == CustomerState.customer_id,
            Interaction.outcome.is_distinct_from("no_answer"),
        )
        .scalar_subquery()
    )
    await session.execute(
        sa.update(CustomerState)
        .where(CustomerState.customer_id.in_(customer_ids))
        .values(last_contact_at=last_contact, updated_at=sa.func.now())
        .execution_options(synchronize_session=False)
    )
    await refresh_next_revisit(session, settings, customer_ids)


async def refresh_next_revisit(
    session: AsyncSession, settings: Settings, customer_ids: Sequence[uuid.UUID]
) -> None:
    """next revisit = last contact + the customer's effective cadence (null without contact)."""
    await session.execute(
        sa.update(CustomerState)
        .where(CustomerState.customer_id.in_(customer_ids))
        .values(
            next_revisit_at=CustomerState.last_contact_at
            + sa.func.make_interval(0, 0, 0, cadence_days_expr(settings)),
            version=CustomerState.version + 1,
            updated_at=sa.func.now(),
        )
        .execution_options(synchronize_session=False)
    )


# -- hot writes: hand-written statements on the request's asyncpg connection ------------------

OUTBOX_INSERT = (
    "INSERT INTO outbox (event_id, type, source, subject, partition_key, topic, time, data) "
    "SELECT x.event_id, x.type, x.source, x.subject, x.partition_key, x.topic, x.time, x.data"
)
# `customer_state` of the customer named, unless the caller already resolved it ($resolved):
# a merged (or, for contact records, erased) customer writes nothing, and the service resolves
# the survivor (or refuses) and runs the statement again, so the common case is one round trip.
_STATE = "SELECT merged_into, erased_at FROM customer_state WHERE customer_id = $2 AND NOT {}"

# A purchase once per (customer, external_ref), with its event and audit entry when new.
# Returns `created` (whether it was inserted) and the customer's `merged_into`.
RECORD_PURCHASE = f"""
WITH state AS ({_STATE.format("$16")}
), ins AS (
    INSERT INTO purchases (id, customer_id, external_ref, occurred_at, amount, cost, margin,
        currency, status, items, refunded_amount, refunded_margin, reporting_currency, fx_rate,
        reporting_amount, reporting_cost, reporting_margin, version, created_at, updated_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, 0, 0, $11, $12, $13, $14, $15, 1,
        $17, $17
    WHERE NOT EXISTS (SELECT 1 FROM state WHERE merged_into IS NOT NULL)
    ON CONFLICT (customer_id, external_ref) DO NOTHING
    RETURNING id
), ob AS (
    {OUTBOX_INSERT} {OUTBOX_ROWS.format(param="$18")} WHERE EXISTS (SELECT 1 FROM ins)
), au AS (
    INSERT INTO {AUDIT_COLUMNS} {AUDIT_ROWS_SELECT.format(param="$19")}
    WHERE EXISTS (SELECT 1 FROM ins)
)
SELECT EXISTS (SELECT 1 FROM ins) AS created, (SELECT merged_into FROM state) AS merged_into
"""

# An interaction with its event and audit entry; an answered contact ($16) also moves the
# customer's last contact and next revisit (as `note_contact`) and closes the revisits the
# cadence planned (status done, linked to this interaction), whose events the caller adds.
# Returns a `created` row, then one `revisit` row per closed follow-up; no rows when the
# customer is merged or erased (the caller resolves or refuses), or when the statement must be
# the whole write ($25, autocommit) and an answered contact would close an open revisit: its
# events take a second statement, so the caller writes it again in a transaction.
LOG_INTERACTION = f"""
WITH state AS ({_STATE.format("$17")}
), ins AS (
    INSERT INTO interactions (id, customer_id, contact_person, channel, direction, occurred_at,
        duration_seconds, subject, summary, outcome, agent_id, need_id, purchase_id,
        complaint_id, version, created_at, updated_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15, $15
    WHERE NOT EXISTS (
        SELECT 1 FROM state WHERE merged_into IS NOT NULL OR erased_at IS NOT NULL
    ) AND NOT ($25 AND $16 AND EXISTS (
        SELECT 1 FROM followups WHERE customer_id = $2 AND kind = 'revisit'
            AND origin = 'cadence' AND status = 'open'
    ))
    RETURNING id
), contact AS (
    INSERT INTO customer_state AS s (customer_id, last_contact_at, next_revisit_at)
    SELECT $2, $6, $18 FROM ins WHERE $16
    ON CONFLICT (customer_id) DO UPDATE SET
        last_contact_at = greatest(s.last_contact_at, excluded.last_contact_at),
        next_revisit_at = greatest(s.last_contact_at, excluded.last_contact_at)
            + make_interval(0, 0, 0, coalesce(s.cadence_days_override,
                CASE s.tier WHEN 'A' THEN $19::int WHEN 'B' THEN $20::int
                    WHEN 'C' THEN $21::int ELSE $22::int END)),
        version = s.version + 1,
        updated_at = now()
    RETURNING s.revisit_scheduled_for IS NOT NULL AS planned
), done AS (
    UPDATE followups SET status = 'done', completed_at = $15, interaction_id = $1,
        version = version + 1, updated_at = $15
    WHERE customer_id = $2 AND kind = 'revisit' AND origin = 'cadence' AND status = 'open'
        AND EXISTS (SELECT 1 FROM contact WHERE planned)
    RETURNING id, kind, due_at, assignee_id
), ob AS (
    {OUTBOX_INSERT} {OUTBOX_ROWS.format(param="$23")} WHERE EXISTS (SELECT 1 FROM ins)
), au AS (
    INSERT INTO {AUDIT_COLUMNS} {AUDIT_ROWS_SELECT.format(param="$24")}
    WHERE EXISTS (SELECT 1 FROM ins)
)
SELECT 'created' AS found, NULL::uuid AS id, NULL::text AS kind, NULL::timestamptz AS due_at,
    NULL::text AS assignee_id FROM ins
UNION ALL SELECT 'revisit', id, kind, due_at, assignee_id FROM done
"""
INSERT_EVENTS = f"{OUTBOX_INSERT} {OUTBOX_ROWS.format(param='$1')}"
RATE_ON = (
    "SELECT rate FROM fx_rates WHERE currency = $1 AND reporting_currency = $2 AND rate_date = $3"
)


async def record_purchase_row(conn: asyncpg.Connection, *params: Any) -> asyncpg.Record:
    """Run `RECORD_PURCHASE` with its 19 parameters (see `service.record_purchase`)."""
    row: asyncpg.Record = await conn.fetchrow(RECORD_PURCHASE, *params)
    return row


async def log_interaction_rows(conn: asyncpg.Connection, *params: Any) -> list[asyncpg.Record]:
    """Run `LOG_INTERACTION` with its 25 parameters (see `service.log_interaction`)."""
    return list(await conn.fetch(LOG_INTERACTION, *params))


CUSTOMER_STATE = "SELECT merged_into, erased_at FROM customer_state WHERE customer_id = $1"


async def customer_status_on(
    conn: asyncpg.Connection, customer_id: uuid.UUID, hops: int = MAX_MERGE_HOPS + 1
) -> tuple[uuid.UUID, datetime | None]:
    """(survivor id, its erased_at) on a bare connection, following at most `hops` merges: as
    `customer_status` (`hops` 6), or `resolve_customer` for `hops=MAX_MERGE_HOPS`. For the
    hot writes' rare cases, which stay on the request's one connection."""
    current, erased = customer_id, None
    for _ in range(hops):
        row = await conn.fetchrow(CUSTOMER_STATE, current)
        if row is None:
            return current, None
        erased = row["erased_at"]
        if row["merged_into"] is None:
            return current, erased
        current = row["merged_into"]
    row = await conn.fetchrow(CUSTOMER_STATE, current)
    return current, None if row is None else row["erased_at"]


PURCHASE_BY_REF = """
SELECT id, customer_id, external_ref, occurred_at, amount, cost, margin, currency, status,
    items::text AS items, refunded_amount, refunded_margin, reporting_currency, fx_rate,
    reporting_amount, reporting_cost, reporting_margin, version, created_at, updated_at
FROM purchases WHERE customer_id = $1 AND external_ref = $2
"""


async def purchase_by_ref(
    conn: asyncpg.Connection, customer_id: uuid.UUID, external_ref: str
) -> SimpleNamespace | None:
    """The stored purchase of (customer, external_ref), its columns as attributes, or None."""
    row = await conn.fetchrow(PURCHASE_BY_REF, customer_id, external_ref)
    if row is None:
        return None
    return SimpleNamespace(**{**row, "items": json.loads(row["items"])})


async def insert_events(conn: asyncpg.Connection, rows: str) -> None:
    """Outbox rows given as one JSON array (`Outbox.row` of each event)."""
    await conn.execute(INSERT_EVENTS, rows)


async def rate_on(
    conn: asyncpg.Connection, currency: str, reporting_currency: str, day: date
) -> Decimal | None:
    rate: Decimal | None = await conn.fetchval(RATE_ON, currency, reporting_currency, day)
    return rate


# -- purchases ----------------------------------------------------------------------------------


async def insert_purchase_if_new(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert unless (customer_id, external_ref) exists; the new id, or None if it existed."""
    stmt = (
        insert(Purchase)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Purchase.customer_id, Purchase.external_ref])
        .returning(Purchase.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def refunds_of(session: AsyncSession, purchase_id: uuid.UUID) -> list[Refund]:
    rows = await session.scalars(
        sa.select(Refund).where(Refund.purchase_id == purchase_id).order_by(Refund.created_at)
    )
    return list(rows.all())


# -- timeline -----------------------------------------------------------------------------------

TIMELINE_SOURCES: dict[str, tuple[type[Model], Any]] = {
    "interaction": (Interaction, Interaction.occurred_at),
    "purchase": (Purchase, Purchase.occurred_at),
    "refund": (Refund, Refund.occurred_at),
    "survey": (Survey, Survey.submitted_at),
    "followup": (Followup, sa.func.coalesce(Followup.completed_at, Followup.due_at)),
    # Records other services publish: service-desk cases, needs, consent changes.
    "case": (TimelineRecord, TimelineRecord.at),
    "need": (TimelineRecord, TimelineRecord.at),
    "consent": (TimelineRecord, TimelineRecord.at),
}


async def timeline_page(
    session: AsyncSession,
    customer_id: uuid.UUID,
    types: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[tuple[str, uuid.UUID, datetime]], str | None]:
    """(type, id, at) of one customer's records, newest first, one keyset page."""
    parts = []
    for name in types:
        model, at = TIMELINE_SOURCES[name]
        part = sa.select(
            sa.literal(name, sa.Text).label("type"),
            model.id.label("id"),  # type: ignore[attr-defined]
            at.label("at"),
        ).where(model.customer_id == customer_id)  # type: ignore[attr-defined]
        if model is TimelineRecord:
            part = part.where(TimelineRecord.kind == name)
        if since is not None:
            part = part.where(at >= since)
        if until is not None:
            part = part.where(at < until)
        parts.append(part)
    stream = sa.union_all(*parts).subquery("stream")
    order = Keyset(
        SortKey(stream.c.at, "t", descending=True, parse=parse_datetime),
        SortKey(stream.c.type, "k", descending=True, parse=str),
        SortKey(stream.c.id, "id", descending=True, parse=uuid.UUID),
    )
    query = order.apply(sa.select(stream.c.type, stream.c.id, stream.c.at), cursor, limit)
    rows = [(r.type, r.id, r.at) for r in (await session.execute(query)).all()]
    position = {"k": 0, "id": 1, "t": 2}
    return order.page(rows, limit, lambda row, name: row[position[name]])


async def timeline_records(
    session: AsyncSession, kind: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TimelineRecord]:
    if not ids:
        return {}
    rows = await session.scalars(
        sa.select(TimelineRecord).where(TimelineRecord.kind == kind, TimelineRecord.id.in_(ids))
    )
    return {row.id: row for row in rows.all()}


async def by_ids(
    session: AsyncSession, model: type[M], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, M]:
    if not ids:
        return {}
    rows = await session.scalars(sa.select(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows.all()}  # type: ignore[attr-defined]


# -- GDPR ---------------------------------------------------------------------------------------

# What the service holds about a customer, by kind, in the order an export lists it.
CUSTOMER_RECORDS: dict[str, tuple[type[Model], Any]] = {
    "interactions": (Interaction, Interaction.occurred_at),
    "followups": (Followup, Followup.due_at),
    "purchases": (Purchase, Purchase.occurred_at),
    "refunds": (Refund, Refund.occurred_at),
    "surveys": (Survey, Survey.submitted_at),
    "survey_invitations": (SurveyInvitation, SurveyInvitation.sent_at),
}


async def records_of(session: AsyncSession, customer_id: uuid.UUID) -> dict[str, list[Any]]:
    """Every record of the customer, by kind (records of merged duplicates were moved to it)."""
    found = {}
    for kind, (model, at) in CUSTOMER_RECORDS.items():
        query = (
            sa.select(model)
            .where(model.customer_id == customer_id)  # type: ignore[attr-defined]
            .order_by(at, model.id)  # type: ignore[attr-defined]
        )
        found[kind] = list((await session.scalars(query)).all())
    return found


async def holds_customer(session: AsyncSession, customer_id: uuid.UUID) -> bool:
    """Whether any record or the local state of this customer exists here."""
    held = [
        sa.select(model.customer_id).where(model.customer_id == customer_id)  # type: ignore[attr-defined]
        for model, _ in CUSTOMER_RECORDS.values()
    ]
    held.append(
        sa.select(CustomerState.customer_id).where(CustomerState.customer_id == customer_id)
    )
    return bool(await session.scalar(sa.select(sa.union_all(*held).subquery().c[0]).limit(1)))


async def state_of(session: AsyncSession, customer_id: uuid.UUID) -> CustomerState | None:
    return await session.get(CustomerState, customer_id, populate_existing=True)


# -- exchange rates -----------------------------------------------------------------------------


async def upsert_rates(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Any]:
    if not rows:
        return []
    table = FxRate.__table__
    assert isinstance(table, sa.Table)
    statement = insert(table)
    result = await session.execute(
        statement.on_conflict_do_update(
            index_elements=["currency", "reporting_currency", "rate_date"],
            set_={c: statement.excluded[c] for c in ("rate", "updated_at", "updated_by")},
        ).returning(*table.c),
        rows,
    )
    return sorted(result.all(), key=lambda r: (r.currency, r.rate_date))


async def list_rates(
    session: AsyncSession,
    reporting_currency: str,
    currency: str | None,
    since: date | None,
    until: date | None,
    limit: int,
) -> list[Any]:
    query = sa.select(FxRate).where(FxRate.reporting_currency == reporting_currency)
    if currency is not None:
        query = query.where(FxRate.currency == currency)
    if since is not None:
        query = query.where(FxRate.rate_date >= since)
    if until is not None:
        query = query.where(FxRate.rate_date < until)
    query = query.order_by(FxRate.currency, FxRate.rate_date.desc()).limit(limit)
    return list((await session.execute(query)).scalars())
