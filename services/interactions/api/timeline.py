"""A customer's timeline: every kind of record in one chronological stream."""

from __future__ import annotations

import uuid
from typing import Annotated, get_args

from fastapi import APIRouter, Query

from services.interactions import repository as repo
from services.interactions import schemas
from services.interactions.api.common import (
    LIST_ERRORS,
    Cursor,
    InteractionsReader,
    Limit,
    Since,
    Until,
    followup_read,
    interaction_read,
    refund_read,
    survey_read,
)
from services.interactions.models import Followup, Interaction, Purchase, Refund, Survey
from shared.pagination import DEFAULT_LIMIT, Page

router = APIRouter(prefix="/customers/{customer_id}", tags=["customers"])


@router.get(
    "/timeline",
    summary="A customer's timeline",
    response_model=Page[schemas.TimelineEntry],
    responses=LIST_ERRORS,
)
async def timeline(
    customer_id: uuid.UUID,
    ctx: InteractionsReader,
    type: Annotated[
        list[schemas.TimelineType] | None,
        Query(description="Only these kinds of record (repeat the parameter for several)."),
    ] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.TimelineEntry]:
    """Interactions, purchases, refunds, surveys and follow-ups of one customer, and next to
    them their service-desk cases (by receipt, in their latest state), needs and consent
    changes (from the events of the service desk and profiles), newest first.

    Needs `interactions:read`. One chronological, cursor-paginated stream; each entry embeds
    the record under the key named by its `type` (cases, needs and consents as codes and
    states; their details are in their own services). Records of merged duplicates appear
    under the survivor.
    """
    types = list(dict.fromkeys(type or get_args(schemas.TimelineType)))
    keys, next_cursor = await repo.timeline_page(
        ctx.session, customer_id, types, since, until, cursor, limit
    )

    def ids(kind: str) -> list[uuid.UUID]:
        return [i for k, i, _ in keys if k == kind]

    found_i = await repo.by_ids(ctx.session, Interaction, ids("interaction"))
    found_p = await repo.by_ids(ctx.session, Purchase, ids("purchase"))
    found_r = await repo.by_ids(ctx.session, Refund, ids("refund"))
    found_s = await repo.by_ids(ctx.session, Survey, ids("survey"))
    found_f = await repo.by_ids(ctx.session, Followup, ids("followup"))
    found_c = await repo.timeline_records(ctx.session, "case", ids("case"))
    found_n = await repo.timeline_records(ctx.session, "need", ids("need"))
    found_k = await repo.timeline_records(ctx.session, "consent", ids("consent"))
    await ctx.audit_reads(
        [
            *(("interaction", r, r.customer_id) for r in found_i.values()),
            *(("refund", r, r.customer_id) for r in found_r.values()),
            *(("survey", r, r.customer_id) for r in found_s.values()),
            *(("followup", r, r.customer_id) for r in found_f.values()),
        ]
    )
    now = ctx.now()
    items = []
    for kind, id_, at in keys:
        entry = schemas.TimelineEntry(type=kind, id=id_, at=at)
        if kind == "interaction":
            entry.interaction = interaction_read(ctx, found_i[id_])
        elif kind == "purchase":
            entry.purchase = schemas.PurchaseRead.of(found_p[id_])
        elif kind == "refund":
            entry.refund = refund_read(ctx, found_r[id_])
        elif kind == "survey":
            entry.survey = survey_read(ctx, found_s[id_])
        elif kind == "case":
            entry.case = schemas.TimelineCase.model_validate(found_c[id_].data)
        elif kind == "need":
            entry.need = schemas.TimelineNeed.model_validate(found_n[id_].data)
        elif kind == "consent":
            entry.consent = schemas.TimelineConsent.model_validate(found_k[id_].data)
        else:
            entry.followup = followup_read(ctx, found_f[id_], now)
        items.append(entry)
    return Page(items=items, next_cursor=next_cursor)
