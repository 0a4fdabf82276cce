"""Queries of the interactions service. Flushes, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.interactions.config import Settings
from services.interactions.models import (
    CustomerState,
    Followup,
    Interaction,
    Model,
    Purchase,
    Refund,
    Survey,
    SurveyInvitation,
)
from shared.pagination import InvalidCursor, decode_cursor, encode_cursor

M = TypeVar("M", bound=Model)
# Merges can chain (A into B, later B into C); follow a few hops, never loop forever.
MAX_MERGE_HOPS = 5


async def get(
    session: AsyncSession, model: type[M], id_: uuid.UUID, *, lock: bool = False
) -> M | None:
    return await session.get(model, id_, with_for_update=lock)


# -- keyset pagination --------------------------------------------------------------------------


async def keyset_page(
    session: AsyncSession,
    stmt: sa.Select[Any],
    time_col: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    cursor: str | None,
    limit: int,
    *,
    descending: bool = True,
) -> tuple[list[Any], str | None]:
    """One page of ORM rows ordered by (time, id), and the cursor of the next page."""
    after = decode_cursor(cursor)
    if after is not None:
        try:
            at, last_id = datetime.fromisoformat(after["t"]), uuid.UUID(after["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidCursor("The cursor is not one this API issued") from exc
        key = sa.tuple_(time_col, id_col)
        stmt = stmt.where(key < (at, last_id) if descending else key > (at, last_id))
    order = (time_col.desc(), id_col.desc()) if descending else (time_col.asc(), id_col.asc())
    rows = list((await session.scalars(stmt.order_by(*order).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(
            {"t": getattr(last, time_col.key).isoformat(), "id": str(getattr(last, id_col.key))}
        )
    return rows, next_cursor


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


async def purchase_by_ref(
    session: AsyncSession, customer_id: uuid.UUID, external_ref: str
) -> Purchase | None:
    return await session.scalar(
        sa.select(Purchase)
        .where(Purchase.customer_id == customer_id, Purchase.external_ref == external_ref)
        .execution_options(populate_existing=True)
    )


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
        if since is not None:
            part = part.where(at >= since)
        if until is not None:
            part = part.where(at < until)
        parts.append(part)
    stream = sa.union_all(*parts).subquery("stream")
    stmt = sa.select(stream.c.type, stream.c.id, stream.c.at)
    after = decode_cursor(cursor)
    if after is not None:
        try:
            key = (datetime.fromisoformat(after["t"]), str(after["k"]), uuid.UUID(after["id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidCursor("The cursor is not one this API issued") from exc
        stmt = stmt.where(sa.tuple_(stream.c.at, stream.c.type, stream.c.id) < key)
    stmt = stmt.order_by(stream.c.at.desc(), stream.c.type.desc(), stream.c.id.desc())
    rows = [(r.type, r.id, r.at) for r in (await session.execute(stmt.limit(limit + 1))).all()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        kind, last_id, at = rows[-1]
        next_cursor = encode_cursor({"t": at.isoformat(), "k": kind, "id": str(last_id)})
    return rows, next_cursor


async def by_ids(
    session: AsyncSession, model: type[M], ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, M]:
    if not ids:
        return {}
    rows = await session.scalars(sa.select(model).where(model.id.in_(ids)))  # type: ignore[attr-defined]
    return {row.id: row for row in rows.all()}  # type: ignore[attr-defined]


async def last_invitation(
    session: AsyncSession, invitation_id: uuid.UUID
) -> SurveyInvitation | None:
    return await session.get(SurveyInvitation, invitation_id, with_for_update=True)
