"""What interactions does with other services' events about the customer's care: the revisit
follow-up of a service-desk case (`case.resolved`), and the timeline's records of cases, needs
and consent changes.

Timeline records hold codes, states and times only (no personal text); per record the newest
event wins, whatever the order of arrival.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.interactions import repository as repo
from services.interactions.models import TimelineRecord
from services.interactions.service import create_auto_followups
from shared.context import RequestContext
from shared.contracts.cases import CaseEvent, CaseReceived, CaseResolved
from shared.contracts.customers import ConsentChanged, NeedFields
from shared.db import rows_json

# Consent changes have no id of their own: each event's id names its record.
CONSENT_NAMESPACE = uuid.UUID("0f6a9a52-55f1-4a8e-9d8e-3c1f2b7c4e10")


@dataclass(frozen=True)
class Entry:
    """What one event says about a timeline record: `data` to merge into what is known, and
    `at`, its place in time, when the event knows it (a case's receipt, a need's recording)."""

    kind: str
    id: uuid.UUID
    customer_id: uuid.UUID
    at: datetime | None
    data: dict[str, Any]
    changed_at: datetime

    @property
    def key(self) -> tuple[str, uuid.UUID]:
        return self.kind, self.id


def fold(
    stored: dict[tuple[str, uuid.UUID], dict[str, Any]], entries: Sequence[Entry]
) -> list[dict[str, Any]]:
    """The records to write after applying `entries` in arrival order to the `stored` rows
    (changed in place): an entry older than its record's last change is ignored, a newer one
    merges its data; `at` is kept once known, else it is the first change's time."""
    written: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}
    for e in entries:
        row = stored.get(e.key)
        if row is None:
            row = stored[e.key] = {
                "kind": e.kind,
                "id": e.id,
                "customer_id": e.customer_id,
                "at": e.at or e.changed_at,
                "at_known": e.at is not None,
                "data": dict(e.data),
                "changed_at": e.changed_at,
            }
        elif row["changed_at"] > e.changed_at:
            continue
        else:
            row["data"] = {**row["data"], **e.data}
            row["changed_at"] = e.changed_at
            if e.at is not None:
                row["at"], row["at_known"] = e.at, True
        written[e.key] = row
    return list(written.values())


# Records handed over as one JSON document, so the statement is one and cached whatever the
# batch. The fold already merged each record's data; `||` keeps what a writer that got in first
# stored, and its place in time when this batch did not know one.
_UPSERT = """
    INSERT INTO timeline_records AS t (kind, id, customer_id, at, data, changed_at)
    SELECT kind, id, customer_id, at, data, changed_at FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS x(kind text, id uuid, customer_id uuid, at timestamptz, data jsonb,
             changed_at timestamptz)
    ON CONFLICT (kind, id) DO UPDATE
    SET data = t.data || EXCLUDED.data, at = {at}, changed_at = EXCLUDED.changed_at
    WHERE t.changed_at <= EXCLUDED.changed_at
"""
UPSERT_KNOWN_AT = sa.text(_UPSERT.format(at="EXCLUDED.at"))
UPSERT_UNKNOWN_AT = sa.text(_UPSERT.format(at="t.at"))


async def record(session: AsyncSession, entries: Sequence[Entry]) -> None:
    """Apply a batch's timeline entries, as one by one in order would, in two to four
    statements: the records that several entries change are locked and folded here, the
    others merged by the upsert itself. A merged duplicate's records go to its survivor."""
    if not entries:
        return
    t = TimelineRecord
    counts = Counter(e.key for e in entries)
    stored: dict[tuple[str, uuid.UUID], dict[str, Any]] = {}
    if repeated := sorted(key for key, n in counts.items() if n > 1):
        locked = await session.execute(
            sa.select(t.kind, t.id, t.customer_id, t.at, t.data, t.changed_at)
            .where(sa.tuple_(t.kind, t.id).in_(repeated))
            .order_by(t.kind, t.id)  # the same order everywhere: no deadlock between batches
            .with_for_update()
        )
        stored = {(r.kind, r.id): {**r._mapping, "at_known": True} for r in locked}
    survivors = await repo.resolve_customers(session, list({e.customer_id for e in entries}))
    entries = [replace(e, customer_id=survivors[e.customer_id]) for e in entries]
    by_at: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for row in fold(stored, entries):
        by_at[row.pop("at_known")].append(row)
    for statement, rows in ((UPSERT_KNOWN_AT, by_at[True]), (UPSERT_UNKNOWN_AT, by_at[False])):
        if rows:
            await session.execute(statement, {"rows": rows_json(rows)})


def case_entry(e: CaseEvent, changes: dict[str, Any]) -> Entry:
    """A case on the timeline: placed at its receipt, showing its latest state."""
    at = e.occurred_at if isinstance(e, CaseReceived) else None
    data = {"type": e.type, "subtype": e.subtype, "reference": e.reference, **changes}
    return Entry("case", e.case_id, e.customer_id, at, data, e.occurred_at)


async def case_resolved(ctx: RequestContext, e: CaseResolved) -> None:
    """The outcome on the timeline, and the revisit on the owner's agenda (the case's owner,
    else the customer's), due when the service desk says; none for an erased customer."""
    await record(ctx.session, [case_entry(e, {"status": e.status, "outcome": e.outcome})])
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


def need_entry(e: NeedFields, recorded: bool) -> Entry:
    data = {
        "category": e.category,
        "priority": e.priority,
        "status": e.status,
        "due_date": e.due_date.isoformat() if e.due_date else None,
    }
    at = e.occurred_at if recorded else None
    return Entry("need", e.need_id, e.customer_id, at, data, e.occurred_at)


def consent_entry(e: ConsentChanged, event_id: str) -> Entry:
    data = {"purpose": e.purpose, "granted": e.granted, "source": e.source}
    record_id = uuid.uuid5(CONSENT_NAMESPACE, event_id)
    return Entry("consent", record_id, e.customer_id, e.occurred_at, data, e.occurred_at)


async def move_records(ctx: RequestContext, duplicate: uuid.UUID, survivor: uuid.UUID) -> None:
    """A merge: the duplicate's timeline records belong to the survivor."""
    await ctx.session.execute(
        sa.update(TimelineRecord)
        .where(TimelineRecord.customer_id == duplicate)
        .values(customer_id=survivor)
        .execution_options(synchronize_session=False)
    )
