"""What interactions does with other services' events about the customer's care: the revisit
follow-up of a service-desk case (`case.resolved`), and the timeline's records of cases, needs
and consent changes.

Timeline records hold codes, states and times only (no personal text); per record the newest
event wins, whatever the order of arrival.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.interactions import repository as repo
from services.interactions.models import TimelineRecord
from services.interactions.service import create_auto_followups
from shared.context import RequestContext
from shared.contracts.cases import CaseEvent, CaseReceived, CaseResolved
from shared.contracts.customers import ConsentChanged, NeedFields

# Consent changes have no id of their own: each event's id names its record.
CONSENT_NAMESPACE = uuid.UUID("0f6a9a52-55f1-4a8e-9d8e-3c1f2b7c4e10")


async def record(
    ctx: RequestContext,
    kind: str,
    record_id: uuid.UUID,
    customer_id: uuid.UUID,
    at: datetime | None,
    data: dict[str, Any],
    changed_at: datetime,
) -> None:
    """Upsert one timeline record: `data` merges into what is known when the event is newer;
    `at` (its place in time) is kept once known."""
    customer = await repo.resolve_customer(ctx.session, customer_id)
    t = TimelineRecord
    stmt = insert(t).values(
        kind=kind,
        id=record_id,
        customer_id=customer,
        at=at or changed_at,
        data=data,
        changed_at=changed_at,
    )
    await ctx.session.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.kind, t.id],
            set_={
                "data": t.data.op("||")(stmt.excluded.data),
                "at": t.at if at is None else stmt.excluded.at,
                "changed_at": stmt.excluded.changed_at,
            },
            where=t.changed_at <= stmt.excluded.changed_at,
        )
    )


async def case_event(ctx: RequestContext, e: CaseEvent, changes: dict[str, Any]) -> None:
    """A case on the timeline: placed at its receipt, showing its latest state."""
    at = e.occurred_at if isinstance(e, CaseReceived) else None
    data = {"type": e.type, "subtype": e.subtype, "reference": e.reference, **changes}
    await record(ctx, "case", e.case_id, e.customer_id, at, data, e.occurred_at)


async def case_resolved(ctx: RequestContext, e: CaseResolved) -> None:
    """The outcome on the timeline, and the revisit on the owner's agenda (the case's owner,
    else the customer's), due when the service desk says; none for an erased customer."""
    await case_event(ctx, e, {"status": e.status, "outcome": e.outcome})
    if e.revisit_due_at is None:
        return
    customer_id, erased_at = await repo.customer_status(ctx.session, e.customer_id)
    if erased_at is not None:
        return
    state = await repo.state_of(ctx.session, customer_id)
    owner = e.owner_id or (state.owner_id if state is not None else None)
    await create_auto_followups(
        ctx,
        [
            {
                "customer_id": customer_id,
                "kind": "revisit",
                "due_at": e.revisit_due_at,
                "assignee_id": owner,
                "origin": "case",
                "case_id": e.case_id,
                "note": None,
                # One revisit per outcome: a reopened and resolved again case gets a new one.
                "dedupe_key": f"case-revisit:{e.case_id}:{e.occurred_at.isoformat()}",
            }
        ],
    )


async def need_event(ctx: RequestContext, e: NeedFields, recorded: bool) -> None:
    data = {
        "category": e.category,
        "priority": e.priority,
        "status": e.status,
        "due_date": e.due_date.isoformat() if e.due_date else None,
    }
    at = e.occurred_at if recorded else None
    await record(ctx, "need", e.need_id, e.customer_id, at, data, e.occurred_at)


async def consent_changed(ctx: RequestContext, e: ConsentChanged, event_id: str) -> None:
    data = {"purpose": e.purpose, "granted": e.granted, "source": e.source}
    record_id = uuid.uuid5(CONSENT_NAMESPACE, event_id)
    await record(ctx, "consent", record_id, e.customer_id, e.occurred_at, data, e.occurred_at)


async def move_records(ctx: RequestContext, duplicate: uuid.UUID, survivor: uuid.UUID) -> None:
    """A merge: the duplicate's timeline records belong to the survivor."""
    await ctx.session.execute(
        sa.update(TimelineRecord)
        .where(TimelineRecord.customer_id == duplicate)
        .values(customer_id=survivor)
        .execution_options(synchronize_session=False)
    )
