"""The service desk's part of GDPR: export of a customer's cases, erasure status.

Mounted by the platform as `GET /customers/{id}/export` and `GET /customers/{id}/erasure`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.complaints import repository as repo
from services.complaints import views
from services.complaints.schemas import CaseExport, ComplaintExport
from shared.context import RequestContext
from shared.gdpr import GdprSpec, Holding


def _by_complaint(rows: Sequence[Any]) -> dict[uuid.UUID, list[Any]]:
    grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.complaint_id].append(row)
    return grouped


async def export(ctx: RequestContext, customer_id: uuid.UUID) -> Holding:
    """Every case of the customer with its history, notes and actions: a fixed number of
    queries, however many cases (duplicates merged into the customer included)."""
    session = ctx.session
    every = await repo.of_customer(session, customer_id)
    complaints = [c for c in every if c.type == "complaint"]
    ids = [c.id for c in every]
    transitions = _by_complaint(await repo.transitions(session, *ids)) if ids else {}
    notes = _by_complaint(await repo.notes(session, *ids)) if ids else {}
    actions = _by_complaint(await repo.actions(session, *ids)) if ids else {}
    exported = [
        ComplaintExport(
            complaint=views.complaint(ctx, c),
            transitions=[views.transition(ctx, t) for t in transitions.get(c.id, [])],
            notes=[views.note(ctx, n) for n in notes.get(c.id, [])],
            actions=[views.action(ctx, a) for a in actions.get(c.id, [])],
        ).model_dump(mode="json")
        for c in complaints
    ]
    cases = [
        CaseExport(
            case=views.case(ctx, c),
            transitions=[views.transition(ctx, t) for t in transitions.get(c.id, [])],
            notes=[views.note(ctx, n) for n in notes.get(c.id, [])],
            actions=[views.action(ctx, a) for a in actions.get(c.id, [])],
        ).model_dump(mode="json")
        for c in every
        if c.type != "complaint"
    ]
    return Holding(
        data={
            "complaints": exported,
            "cases": cases,
            "tier": await repo.tier_of(session, customer_id),
        },
        erased_at=await repo.erased_at(session, customer_id),
    )


async def erasure(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[bool, datetime | None]:
    session = ctx.session
    holds = await repo.has_complaints(session, customer_id)
    return holds, await repo.erased_at(session, customer_id)


GDPR = GdprSpec(
    service="complaints",
    export=export,
    erasure=erasure,
    kept_after_erasure=[
        "cases (complaints included) without contact details or free text: type, reference, "
        "category, severity, channel, timings, SLA facts, outcome, root-cause category, "
        "claim amounts and rating",
    ],
    export_description=(
        "`data.complaints`: every complaint of the customer, oldest first, with its state "
        "history, notes and actions (complaints of duplicates merged into the customer "
        "included); `data.cases`: the customer's cases of every other type, the same way; "
        "`data.tier`: the latest ABC tier known here."
    ),
)
