"""Queries of the complaints service; flushes at most, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints.models import (
    Action,
    Agent,
    Complaint,
    CustomerRedirect,
    CustomerTier,
    ErasedCustomer,
    Note,
    Transition,
)

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
    session: AsyncSession, team: str, open_statuses: Sequence[str]
) -> str | None:
    """The active agent of `team` with the fewest open complaints (ties: lowest id).

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
    stmt = (
        sa.select(Agent.id)
        .where(Agent.team == team, Agent.active.is_(True))
        .order_by(load, Agent.id)
        .limit(1)
    )
    return await session.scalar(stmt)


@dataclass
class QueueFilter:
    status: list[str] | None = None
    severity: list[str] | None = None
    category: list[str] | None = None
    sla_status: list[str] | None = None
    assignee: str | None = None
    team: str | None = None
    customer_id: uuid.UUID | None = None
    escalated: bool | None = None
    revisit_due_before: datetime | None = None


async def queue(
    session: AsyncSession,
    f: QueueFilter,
    after: tuple[datetime | None, uuid.UUID] | None,
    limit: int,
) -> Sequence[Complaint]:
    key = queue_key()
    stmt = sa.select(Complaint)
    for column, values in (
        (Complaint.status, f.status),
        (Complaint.severity, f.severity),
        (Complaint.category, f.category),
        (Complaint.sla_status, f.sla_status),
    ):
        if values:
            stmt = stmt.where(column.in_(values))
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
    if after is not None:
        due = INFINITY if after[0] is None else sa.literal(after[0], sa.DateTime(timezone=True))
        stmt = stmt.where(sa.tuple_(key, Complaint.id) > sa.tuple_(due, sa.literal(after[1])))
    stmt = stmt.order_by(key, Complaint.id).limit(limit)
    return (await session.scalars(stmt)).all()


async def transitions(session: AsyncSession, complaint_id: uuid.UUID) -> Sequence[Transition]:
    stmt = (
        sa.select(Transition).where(Transition.complaint_id == complaint_id).order_by(Transition.id)
    )
    return (await session.scalars(stmt)).all()


async def notes(session: AsyncSession, complaint_id: uuid.UUID) -> Sequence[Note]:
    stmt = sa.select(Note).where(Note.complaint_id == complaint_id).order_by(Note.created_at)
    return (await session.scalars(stmt)).all()


async def actions(session: AsyncSession, complaint_id: uuid.UUID) -> Sequence[Action]:
    stmt = sa.select(Action).where(Action.complaint_id == complaint_id).order_by(Action.created_at)
    return (await session.scalars(stmt)).all()


async def get_action(
    session: AsyncSession, complaint_id: uuid.UUID, action_id: uuid.UUID
) -> Action | None:
    stmt = sa.select(Action).where(Action.id == action_id, Action.complaint_id == complaint_id)
    return (await session.scalars(stmt.with_for_update())).one_or_none()


async def upsert_agent(session: AsyncSession, agent_id: str, team: str, active: bool) -> None:
    from sqlalchemy.dialects.postgresql import insert

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
