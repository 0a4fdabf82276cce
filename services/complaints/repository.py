"""Queries of the complaints service; flushes at most, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints.desk import OPEN_STATUSES
from services.complaints.models import (
    Action,
    Agent,
    CannedResponse,
    Complaint,
    CustomerRedirect,
    CustomerTier,
    ErasedCustomer,
    Holiday,
    Note,
    ReferenceCounter,
    RoutingRule,
    SlaPolicy,
    Team,
    Transition,
    idempotency_keys,
)
from shared.audit import AUDIT_COLUMNS, AUDIT_ROWS_SELECT
from shared.keyset import Keyset, SortKey
from shared.outbox import OUTBOX_ROWS

INFINITY: sa.ColumnElement[Any] = sa.literal_column("'infinity'::timestamptz")


def queue_key() -> sa.ColumnElement[Any]:
    """The work queue's order: nearest deadline first; resolved and closed last."""
    return sa.func.coalesce(Complaint.next_due_at, INFINITY)


async def get(
    session: AsyncSession, complaint_id: uuid.UUID, *, lock: bool = False
) -> Complaint | None:
    stmt = sa.select(Complaint).where(Complaint.id == complaint_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def claim_due_sla_checks(
    session: AsyncSession, now: datetime, limit: int
) -> Sequence[Complaint]:
    """Complaints whose next SLA check is due; rows another replica holds are skipped."""
    stmt = (
        sa.select(Complaint)
        .where(Complaint.next_sla_check_at <= now)
        .order_by(Complaint.next_sla_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(stmt)).all()


async def resolve_customer(session: AsyncSession, customer_id: uuid.UUID) -> uuid.UUID:
    survivor = await session.scalar(
        sa.select(CustomerRedirect.survivor_id).where(CustomerRedirect.merged_id == customer_id)
    )
    return survivor or customer_id


async def is_erased(session: AsyncSession, customer_id: uuid.UUID) -> bool:
    found = await session.scalar(
        sa.select(ErasedCustomer.customer_id).where(ErasedCustomer.customer_id == customer_id)
    )
    return found is not None


async def tier_of(session: AsyncSession, customer_id: uuid.UUID) -> str | None:
    return await session.scalar(
        sa.select(CustomerTier.tier).where(CustomerTier.customer_id == customer_id)
    )


async def open_of_customer(
    session: AsyncSession, customer_id: uuid.UUID, open_statuses: Sequence[str]
) -> Sequence[Complaint]:
    stmt = (
        sa.select(Complaint)
        .where(Complaint.customer_id == customer_id, Complaint.status.in_(open_statuses))
        .order_by(Complaint.id)
        .with_for_update()
    )
    return (await session.scalars(stmt)).all()


async def least_loaded_agent(
    session: AsyncSession, team: str, open_statuses: Sequence[str], skill: str | None = None
) -> str | None:
    """The active agent of `team` (with `skill`, when given) with the fewest open cases
    (ties: lowest id).

    The team's agent rows are locked first, so concurrent automatic assignments to one team
    queue up and each sees the load the previous one left.
    """
    await session.execute(
        sa.select(Agent.id)
        .where(Agent.team == team, Agent.active.is_(True))
        .order_by(Agent.id)
        .with_for_update()
    )
    load = (
        sa.select(sa.func.count(Complaint.id))
        .where(Complaint.assignee == Agent.id, Complaint.status.in_(open_statuses))
        .scalar_subquery()
    )
    stmt = sa.select(Agent.id).where(Agent.team == team, Agent.active.is_(True))
    if skill is not None:
        stmt = stmt.where(sa.literal(skill) == sa.any_(Agent.skills))
    return await session.scalar(stmt.order_by(load, Agent.id).limit(1))


async def team_lead(session: AsyncSession, team: str) -> str | None:
    return await session.scalar(sa.select(Team.lead).where(Team.name == team))


async def next_number(session: AsyncSession, prefix: str, year: int) -> int:
    """The next number of the per-year sequence of `prefix` (rows lock: no gaps, no repeats)."""
    stmt = insert(ReferenceCounter).values(prefix=prefix, year=year, last=1)
    upsert = stmt.on_conflict_do_update(
        index_elements=[ReferenceCounter.prefix, ReferenceCounter.year],
        set_={"last": ReferenceCounter.last + 1},
    ).returning(ReferenceCounter.last)
    return int((await session.execute(upsert)).scalar_one())


@dataclass
class QueueFilter:
    type: list[str] | None = None
    subtype: list[str] | None = None
    queue: str | None = None
    status: list[str] | None = None
    severity: list[str] | None = None
    category: list[str] | None = None
    sla_status: list[str] | None = None
    assignee: str | None = None
    team: str | None = None
    customer_id: uuid.UUID | None = None
    escalated: bool | None = None
    revisit_due_before: datetime | None = None
    unassigned: bool = False
    open_only: bool = False


def _parse_due(value: Any) -> Any:
    """A cursor's deadline: the queue key of resolved and closed complaints is infinity."""
    if value is None:
        return INFINITY
    return sa.literal(datetime.fromisoformat(str(value)), sa.DateTime(timezone=True))


QUEUE_ORDER = Keyset(
    SortKey(queue_key(), "next_due_at", parse=_parse_due),
    SortKey(Complaint.id, "id", parse=uuid.UUID),
)


async def queue(
    session: AsyncSession, f: QueueFilter, cursor: str | None, limit: int
) -> tuple[list[Complaint], str | None]:
    """One page of the work queue (nearest deadline first) and the next page's cursor."""
    stmt = sa.select(Complaint)
    for column, values in (
        (Complaint.type, f.type),
        (Complaint.subtype, f.subtype),
        (Complaint.status, f.status),
        (Complaint.severity, f.severity),
        (Complaint.category, f.category),
        (Complaint.sla_status, f.sla_status),
    ):
        if values:
            stmt = stmt.where(column.in_(values))
    if f.queue is not None:
        stmt = stmt.where(Complaint.queue == f.queue)
    if f.open_only:
        stmt = stmt.where(Complaint.status.in_(OPEN_STATUSES))
    if f.unassigned:
        stmt = stmt.where(Complaint.assignee.is_(None))
    if f.assignee is not None:
        stmt = stmt.where(Complaint.assignee == f.assignee)
    if f.team is not None:
        stmt = stmt.where(Complaint.team == f.team)
    if f.customer_id is not None:
        stmt = stmt.where(Complaint.customer_id == f.customer_id)
    if f.escalated is not None:
        stmt = stmt.where(
            Complaint.escalation_level > 0 if f.escalated else Complaint.escalation_level == 0
        )
    if f.revisit_due_before is not None:
        stmt = stmt.where(
            Complaint.status == "resolved", Complaint.revisit_due_at <= f.revisit_due_before
        )
    rows = (await session.scalars(QUEUE_ORDER.apply(stmt, cursor, limit))).all()
    return QUEUE_ORDER.page(rows, limit)


async def _of_complaints(
    session: AsyncSession, model: Any, complaint_ids: Sequence[uuid.UUID], *order: Any
) -> Sequence[Any]:
    """Rows of a complaint's child table for any number of complaints: one query."""
    stmt = sa.select(model).where(model.complaint_id.in_(complaint_ids)).order_by(*order)
    return (await session.scalars(stmt)).all()


async def transitions(session: AsyncSession, *complaint_ids: uuid.UUID) -> Sequence[Transition]:
    """The state changes of the complaints, oldest first."""
    return await _of_complaints(session, Transition, complaint_ids, Transition.id)


async def notes(session: AsyncSession, *complaint_ids: uuid.UUID) -> Sequence[Note]:
    return await _of_complaints(session, Note, complaint_ids, Note.created_at, Note.id)


async def actions(session: AsyncSession, *complaint_ids: uuid.UUID) -> Sequence[Action]:
    return await _of_complaints(session, Action, complaint_ids, Action.created_at, Action.id)


async def of_customer(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Complaint]:
    """Every complaint of the customer, oldest first."""
    stmt = (
        sa.select(Complaint)
        .where(Complaint.customer_id == customer_id)
        .order_by(Complaint.received_at, Complaint.id)
    )
    return (await session.scalars(stmt)).all()


async def has_complaints(session: AsyncSession, customer_id: uuid.UUID) -> bool:
    found = await session.scalar(
        sa.select(Complaint.id).where(Complaint.customer_id == customer_id).limit(1)
    )
    return found is not None


async def erased_at(session: AsyncSession, customer_id: uuid.UUID) -> datetime | None:
    return await session.scalar(
        sa.select(ErasedCustomer.erased_at).where(ErasedCustomer.customer_id == customer_id)
    )


async def get_action(
    session: AsyncSession, complaint_id: uuid.UUID, action_id: uuid.UUID
) -> Action | None:
    stmt = sa.select(Action).where(Action.id == action_id, Action.complaint_id == complaint_id)
    return (await session.scalars(stmt.with_for_update())).one_or_none()


async def agent(session: AsyncSession, agent_id: str) -> Agent | None:
    return await session.get(Agent, agent_id)


async def upsert_agent(session: AsyncSession, agent_id: str, team: str, active: bool) -> None:
    stmt = insert(Agent).values(id=agent_id, team=team, active=active, updated_at=sa.func.now())
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Agent.id],
            set_={"team": team, "active": active, "updated_at": sa.func.now()},
        )
    )


async def agents_with_load(
    session: AsyncSession, team: str | None, open_statuses: Sequence[str]
) -> Sequence[sa.Row[Any]]:
    load = (
        sa.select(sa.func.count(Complaint.id))
        .where(Complaint.assignee == Agent.id, Complaint.status.in_(open_statuses))
        .scalar_subquery()
    )
    stmt = sa.select(Agent.id, Agent.team, Agent.active, load.label("open_complaints"))
    if team is not None:
        stmt = stmt.where(Agent.team == team)
    return (await session.execute(stmt.order_by(Agent.team, Agent.id))).all()


# -- consumed customer events ------------------------------------------------------------------


async def record_tier(
    session: AsyncSession, customer_id: uuid.UUID, tier: str, as_of: datetime
) -> bool:
    """Keep the customer's newest tier; False when a newer one was known already."""
    stmt = insert(CustomerTier).values(customer_id=customer_id, tier=tier, as_of=as_of)
    upsert = stmt.on_conflict_do_update(
        index_elements=[CustomerTier.customer_id],
        set_={"tier": stmt.excluded.tier, "as_of": stmt.excluded.as_of},
        where=CustomerTier.as_of <= stmt.excluded.as_of,
    ).returning(CustomerTier.customer_id)
    return (await session.execute(upsert)).first() is not None


async def redirect_customer(
    session: AsyncSession, duplicate: uuid.UUID, survivor: uuid.UUID
) -> None:
    """Complaints of `duplicate`, now and later, belong to `survivor`."""
    await session.execute(
        insert(CustomerRedirect)
        .values(merged_id=duplicate, survivor_id=survivor)
        .on_conflict_do_update(
            index_elements=[CustomerRedirect.merged_id], set_={"survivor_id": survivor}
        )
    )
    # Duplicates merged into the duplicate earlier now lead to the survivor too.
    await session.execute(
        sa.update(CustomerRedirect)
        .where(CustomerRedirect.survivor_id == duplicate)
        .values(survivor_id=survivor)
    )
    await session.execute(
        sa.update(Complaint)
        .where(Complaint.customer_id == duplicate)
        .values(customer_id=survivor, version=Complaint.version + 1, updated_at=sa.func.now())
    )


async def mark_erased(session: AsyncSession, customer_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        insert(ErasedCustomer)
        .values(customer_id=customer_id, erased_at=at)
        .on_conflict_do_nothing()
    )


async def scrub_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Set the customer's personal data to NULL (so no ciphertext remains), replies included."""
    ids = sa.select(Complaint.id).where(Complaint.customer_id == customer_id)
    # Keep category, severity, timings, SLA facts and ratings; drop who and what was said.
    await session.execute(
        sa.update(Complaint)
        .where(Complaint.customer_id == customer_id)
        .values(
            complainant_name=None,
            complainant_email=None,
            complainant_phone=None,
            subject=None,
            description=None,
            root_cause=None,
            resolution=None,
            rating_comment=None,
            erased_at=sa.func.now(),
            version=Complaint.version + 1,
            updated_at=sa.func.now(),
        )
    )
    await session.execute(sa.update(Note).where(Note.complaint_id.in_(ids)).values(body=None))
    await session.execute(
        sa.update(Transition).where(Transition.complaint_id.in_(ids)).values(note=None)
    )
    await session.execute(
        sa.update(Action).where(Action.complaint_id.in_(ids)).values(description=None)
    )
    # Stored Idempotency-Key replies repeat the complainant's details: they go too.
    merged = await session.scalars(
        sa.select(CustomerRedirect.merged_id).where(CustomerRedirect.survivor_id == customer_id)
    )
    every_id = [str(customer_id), *(str(m) for m in merged)]
    await session.execute(
        sa.delete(idempotency_keys).where(
            idempotency_keys.c.body["customer_id"].astext.in_(every_id)
        )
    )


# -- the desk's configuration ------------------------------------------------------------------


async def sla_policies(session: AsyncSession) -> Sequence[SlaPolicy]:
    return (await session.scalars(sa.select(SlaPolicy).order_by(SlaPolicy.position))).all()


async def replace_sla_policies(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(sa.delete(SlaPolicy))
    if rows:
        await session.execute(insert(SlaPolicy), rows)


async def routing_rules(session: AsyncSession) -> Sequence[RoutingRule]:
    return (await session.scalars(sa.select(RoutingRule).order_by(RoutingRule.position))).all()


async def replace_routing_rules(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(sa.delete(RoutingRule))
    if rows:
        await session.execute(insert(RoutingRule), rows)


async def holidays(session: AsyncSession, year: int | None) -> Sequence[Holiday]:
    stmt = sa.select(Holiday).order_by(Holiday.day)
    if year is not None:
        stmt = stmt.where(sa.extract("year", Holiday.day) == year)
    return (await session.scalars(stmt)).all()


async def holiday_days(session: AsyncSession) -> list[date]:
    return list((await session.scalars(sa.select(Holiday.day))).all())


async def put_holiday(session: AsyncSession, day: date, name: str) -> None:
    stmt = insert(Holiday).values(day=day, name=name)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[Holiday.day], set_={"name": name})
    )


async def delete_holiday(session: AsyncSession, day: date) -> bool:
    result = await session.execute(
        sa.delete(Holiday).where(Holiday.day == day).returning(Holiday.day)
    )
    return result.first() is not None


async def put_team(
    session: AsyncSession,
    name: str,
    lead: str | None,
    description: str | None,
    members: list[dict[str, Any]],
) -> None:
    """The team row, its members as agents (skills, active), and members not listed any more
    deactivated (they keep their history, get no new cases)."""
    values = {"lead": lead, "description": description, "updated_at": sa.func.now()}
    stmt = insert(Team).values(name=name, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[Team.name], set_=values))
    listed = [m["agent_id"] for m in members]
    await session.execute(
        sa.update(Agent)
        .where(Agent.team == name, Agent.id.not_in(listed))
        .values(active=False, updated_at=sa.func.now())
    )
    for m in members:
        row = {"team": name, "active": m["active"], "skills": m["skills"]}
        upsert = insert(Agent).values(id=m["agent_id"], **row, updated_at=sa.func.now())
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[Agent.id], set_={**row, "updated_at": sa.func.now()}
            )
        )


async def teams(session: AsyncSession, name: str | None = None) -> Sequence[Team]:
    stmt = sa.select(Team).order_by(Team.name)
    if name is not None:
        stmt = stmt.where(Team.name == name)
    return (await session.scalars(stmt)).all()


async def members_with_load(
    session: AsyncSession, team_names: Sequence[str], open_statuses: Sequence[str]
) -> Sequence[sa.Row[Any]]:
    load = (
        sa.select(sa.func.count(Complaint.id))
        .where(Complaint.assignee == Agent.id, Complaint.status.in_(open_statuses))
        .scalar_subquery()
    )
    stmt = (
        sa.select(Agent.id, Agent.team, Agent.active, Agent.skills, load.label("open_cases"))
        .where(Agent.team.in_(team_names))
        .order_by(Agent.team, Agent.id)
    )
    return (await session.execute(stmt)).all()


async def queued_per_team(
    session: AsyncSession, team_names: Sequence[str], open_statuses: Sequence[str]
) -> dict[str, int]:
    stmt = (
        sa.select(Complaint.team, sa.func.count())
        .where(
            Complaint.team.in_(team_names),
            Complaint.assignee.is_(None),
            Complaint.queue.is_(None),
            Complaint.status.in_(open_statuses),
        )
        .group_by(Complaint.team)
    )
    return {str(team): count for team, count in (await session.execute(stmt)).all()}


async def canned_response(
    session: AsyncSession, response_id: uuid.UUID, *, lock: bool = False
) -> CannedResponse | None:
    stmt = sa.select(CannedResponse).where(CannedResponse.id == response_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


async def canned_responses(
    session: AsyncSession, case_type: str | None, locale: str | None
) -> Sequence[CannedResponse]:
    """Responses for the type (and those for every type), in the locale or its language."""
    stmt = sa.select(CannedResponse)
    if case_type is not None:
        stmt = stmt.where(sa.or_(CannedResponse.type == case_type, CannedResponse.type.is_(None)))
    if locale is not None:
        language = locale.split("-")[0]
        stmt = stmt.where(
            sa.or_(CannedResponse.locale == locale, CannedResponse.locale == language)
        )
    order = (CannedResponse.type, CannedResponse.locale, CannedResponse.title, CannedResponse.id)
    return (await session.scalars(stmt.order_by(*order))).all()


async def delete_canned_response(session: AsyncSession, response_id: uuid.UUID) -> bool:
    result = await session.execute(
        sa.delete(CannedResponse)
        .where(CannedResponse.id == response_id)
        .returning(CannedResponse.id)
    )
    return result.first() is not None


# -- intake as hand-written statements on the request's connection -----------------------------

# What intake needs from the database before it can decide anything, in one round trip: the
# customer after merges, their tier, whether they were erased, and the version of the desk's
# configuration (intake's cached copy is good while it is unchanged).
INTAKE_FACTS = """
WITH c AS (
    SELECT coalesce((SELECT survivor_id FROM customer_redirects WHERE merged_id = $1), $1) AS id
)
SELECT c.id AS customer_id,
    (SELECT tier FROM customer_tiers WHERE customer_id = c.id) AS tier,
    EXISTS (SELECT 1 FROM erased_customers WHERE customer_id = c.id) AS erased,
    (SELECT version FROM desk_config WHERE id = 1) AS config_version
FROM c
"""


async def intake_facts(conn: asyncpg.Connection, customer_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(INTAKE_FACTS, customer_id)
    return row


# The configuration and its version from one snapshot: a copy is never newer than its number.
DESK_CONFIG = """
SELECT (SELECT version FROM desk_config WHERE id = 1) AS version,
    (SELECT coalesce(jsonb_agg(to_jsonb(p) - 'position' ORDER BY p.position), '[]'::jsonb)
     FROM sla_policies p) AS policies,
    (SELECT coalesce(jsonb_agg(to_jsonb(r) - 'position' ORDER BY r.position), '[]'::jsonb)
     FROM routing_rules r) AS rules,
    (SELECT coalesce(array_agg(day), '{}') FROM holidays) AS holidays
"""


async def desk_config(conn: asyncpg.Connection) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(DESK_CONFIG)
    return row


# `least_loaded_agent` on the driver connection: the team's agent rows are locked by one
# statement, then the next statement (a snapshot taken after the lock) counts the load.
LOCK_TEAM = "SELECT id FROM agents WHERE team = $1 AND active ORDER BY id FOR UPDATE"
LEAST_LOADED = """
SELECT a.id FROM agents a
WHERE a.team = $1 AND a.active AND ($2::text IS NULL OR $2::text = ANY(a.skills))
ORDER BY (SELECT count(c.id) FROM complaints c
          WHERE c.assignee = a.id AND c.status = ANY($3::text[])), a.id
LIMIT 1
"""


async def least_loaded_agent_on(
    conn: asyncpg.Connection, team: str, open_statuses: Sequence[str], skill: str | None = None
) -> str | None:
    await conn.execute(LOCK_TEAM, team)
    agent: str | None = await conn.fetchval(LEAST_LOADED, team, skill, list(open_statuses))
    return agent


# Every column intake writes, in the order `register_row` takes their values (the reference
# comes from `REGISTER_CASE` itself).
CASE_COLUMNS = (
    "id",
    "type",
    "subtype",
    "customer_id",
    "channel",
    "category",
    "severity",
    "status",
    "tier",
    "complainant_name",
    "complainant_email",
    "complainant_phone",
    "subject",
    "description",
    "related_purchase_id",
    "related_interaction_id",
    "claim_kind",
    "amount_claimed",
    "currency",
    "delivered_at",
    "return_window_days",
    "window_overridden_by",
    "assignee",
    "team",
    "queue",
    "escalation_level",
    "critical_escalated",
    "received_at",
    "paused_seconds",
    "paused_since",
    "sla_policy",
    "sla_calendar",
    "pause_states",
    "first_response_target_s",
    "resolution_target_s",
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_due_at",
    "resolution_warn_at",
    "first_response_warned",
    "first_response_breached",
    "resolution_warned",
    "resolution_breached",
    "sla_status",
    "next_sla_check_at",
    "next_due_at",
    "reopen_count",
    "erased_at",
    "version",
    "created_at",
    "updated_at",
)
_FIRST = len(CASE_COLUMNS) + 1  # the parameters after the case's columns

# A case, its intake transition, its events and its audit entry: one statement. The reference
# is numbered here, last, so the counter row (locked until commit: no gaps, no repeats) is held
# for this statement and the commit only. The format (`SR-2026-000123`: the type's prefix from
# `desk.REFERENCE_PREFIX`, the year of receipt, the per-year sequence in at least six digits)
# is made here alone, written into the case and into the events that carry a `reference`.
REGISTER_CASE = f"""
WITH n AS (
    INSERT INTO reference_counters (prefix, year, last)
    VALUES (${_FIRST + 4}, ${_FIRST + 5}, 1)
    ON CONFLICT (prefix, year) DO UPDATE SET last = reference_counters.last + 1
    RETURNING last
), ref AS (
    SELECT ${_FIRST + 4}::text || '-' || ${_FIRST + 5}::int || '-'
        || lpad(last::text, greatest(6, length(last::text)), '0') AS reference
    FROM n
), ins AS (
    INSERT INTO complaints ({", ".join(CASE_COLUMNS)}, reference)
    SELECT {", ".join(f"${i}" for i in range(1, _FIRST))}, ref.reference FROM ref
    RETURNING id, reference
), tr AS (
    INSERT INTO complaint_transitions (complaint_id, from_status, to_status, actor, note, at)
    SELECT id, NULL, 'received', ${_FIRST}, NULL, ${_FIRST + 1} FROM ins
), ob AS (
    INSERT INTO outbox (event_id, type, source, subject, partition_key, topic, time, data)
    SELECT x.event_id, x.type, x.source, x.subject, x.partition_key, x.topic, x.time,
        CASE WHEN x.data ? 'reference'
             THEN jsonb_set(x.data, '{{reference}}', to_jsonb(ins.reference)) ELSE x.data END
    {OUTBOX_ROWS.format(param=f"${_FIRST + 2}")}, ins
), au AS (
    INSERT INTO {AUDIT_COLUMNS} {AUDIT_ROWS_SELECT.format(param=f"${_FIRST + 3}")}
)
SELECT reference FROM ins
"""


async def register_row(
    conn: asyncpg.Connection,
    values: Sequence[Any],
    actor: str,
    at: datetime,
    events: str,
    audit: str,
    prefix: str,
    year: int,
) -> str:
    """Run `REGISTER_CASE`: `values` of `CASE_COLUMNS` (sealed as stored), the intake
    transition's actor and time, the outbox rows and audit entries as JSON arrays, the
    reference's prefix and year; returns the reference."""
    reference: str = await conn.fetchval(
        REGISTER_CASE, *values, actor, at, events, audit, prefix, year
    )
    return reference
