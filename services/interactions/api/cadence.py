"""A customer's revisit cadence: the plan, and the override."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.interactions import schemas, service
from services.interactions.api.common import FollowupsReader, FollowupsWriter, cadence_read
from shared.problems import problem_responses

router = APIRouter(prefix="/customers/{customer_id}", tags=["customers"])


@router.get(
    "/cadence",
    summary="A customer's revisit plan",
    response_model=schemas.CadenceRead,
    responses=problem_responses(401, 403, 422),
)
async def get_cadence(customer_id: uuid.UUID, ctx: FollowupsReader) -> schemas.CadenceRead:
    """Tier, cadence, last contact and next revisit date (needs `followups:read`).

    The cadence is the tier's default (settings: A 14, B 30, C 90 days; untiered customers
    as C) unless overridden. When the next revisit date comes, a `revisit` follow-up is created.
    """
    return cadence_read(ctx, await service.cadence_state(ctx, customer_id))


@router.put(
    "/cadence",
    summary="Override a customer's revisit cadence",
    response_model=schemas.CadenceRead,
    responses=problem_responses(401, 403, 422),
)
async def put_cadence(
    customer_id: uuid.UUID, body: schemas.CadenceUpdate, ctx: FollowupsWriter
) -> schemas.CadenceRead:
    """Set (or with `null` remove) the customer's own cadence (needs `followups:write`).

    The next revisit date moves at once.
    """
    return cadence_read(ctx, await service.set_cadence(ctx, customer_id, body.cadence_days))
