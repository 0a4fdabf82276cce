"""The service's part of GDPR: what it holds about a customer, and whether it erased them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from services.interactions import repository as repo
from services.interactions import schemas
from services.interactions.service import settings_of
from shared.context import RequestContext
from shared.gdpr import GdprSpec, Holding


async def export(ctx: RequestContext, customer_id: uuid.UUID) -> Holding:
    """Every record of the customer here, decrypted; records of merged duplicates included
    (they were moved to it)."""
    now = ctx.now()
    views: dict[str, Callable[[Any], BaseModel]] = {
        "interactions": schemas.InteractionRead.model_validate,
        "followups": lambda f: schemas.FollowupRead.of(f, now),
        "purchases": schemas.PurchaseRead.of,
        "refunds": schemas.RefundRead.model_validate,
        "surveys": schemas.SurveyRead.model_validate,
        "survey_invitations": schemas.InvitationRead.model_validate,
    }
    found = await repo.records_of(ctx.session, customer_id)
    data: dict[str, Any] = {
        kind: [views[kind](r).model_dump(mode="json") for r in rows] for kind, rows in found.items()
    }
    state = await repo.state_of(ctx.session, customer_id)
    data["cadence"] = (
        schemas.CadenceRead.of(state, settings_of(ctx).cadence_days(state.tier)).model_dump(
            mode="json"
        )
        if state is not None
        else None
    )
    data["important_dates"] = [
        schemas.ImportantDate.model_validate(d).model_dump(mode="json")
        for d in (state.important_dates if state is not None else [])
    ]
    return Holding(data=data, erased_at=state.erased_at if state is not None else None)


async def erasure(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[bool, datetime | None]:
    state = await repo.state_of(ctx.session, customer_id)
    erased_at = state.erased_at if state is not None else None
    return await repo.holds_customer(ctx.session, customer_id), erased_at


GDPR = GdprSpec(
    service="interactions",
    export=export,
    erasure=erasure,
    kept_after_erasure=[
        "interactions: channel, direction, time, outcome, agent and duration (no names or text)",
        "purchases and refunds: amounts, margins, items and dates (no refund reasons)",
        "surveys: scores, NPS and effort (no comments)",
        "follow-ups: kind, due time and status, open ones cancelled (no notes)",
    ],
    export_description=(
        "`data` holds `interactions`, `followups`, `purchases`, `refunds`, `surveys`, "
        "`survey_invitations`, the revisit `cadence` and the `important_dates` care follow-ups "
        "are planned from. Records of duplicates merged into the customer are included."
    ),
)
