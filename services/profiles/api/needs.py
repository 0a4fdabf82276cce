"""Business needs and requirements of customers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Path, Query, Response

from services.profiles import service
from services.profiles.api.common import CustomerId, Reader, Writer
from services.profiles.api.common import router as new_router
from services.profiles.models import Need
from services.profiles.schemas import NeedCreate, NeedRead, NeedUpdate
from shared.context import RequestContext
from shared.contracts.customers import NeedStatus
from shared.http import IdempotencyKeyHeader, IfMatch, etag_of, set_etag
from shared.idempotency import Reply, idempotent
from shared.problems import problem_responses

router = new_router()
NeedId = Annotated[uuid.UUID, Path(description="The need's id.")]


def view(ctx: RequestContext, need: Need) -> NeedRead:
    return ctx.mask("need", NeedRead.model_validate(need, from_attributes=True))


@router.post(
    "/customers/{customer_id}/needs",
    tags=["needs"],
    summary="Record a need",
    status_code=201,
    response_model=NeedRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_need(
    ctx: Writer,
    customer_id: CustomerId,
    data: NeedCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Record a business need or requirement with category, priority, status and due date.
    Needs `customers:write`. Publishes `need.recorded`."""

    async def add() -> Reply:
        need = await service.add_need(ctx, customer_id, data)
        location = f"/customers/{customer_id}/needs/{need.id}"
        return Reply(view(ctx, need), 201, {"ETag": etag_of(need.version), "Location": location})

    return await idempotent(ctx, idempotency_key, add)


@router.get(
    "/customers/{customer_id}/needs",
    tags=["needs"],
    summary="List the needs of a customer",
    response_model=list[NeedRead],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_needs(
    ctx: Reader,
    customer_id: CustomerId,
    status: Annotated[NeedStatus | None, Query(description="Only needs in this status.")] = None,
) -> list[NeedRead]:
    """The customer's needs, oldest first. Needs `customers:read`; the free-text description is
    left out without `pii:read`."""
    return [view(ctx, n) for n in await service.needs(ctx, customer_id, status)]


@router.get(
    "/customers/{customer_id}/needs/{need_id}",
    tags=["needs"],
    summary="Read a need",
    response_model=NeedRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_need(
    ctx: Reader, customer_id: CustomerId, need_id: NeedId, response: Response
) -> NeedRead:
    """One need with its `ETag`. Needs `customers:read`; no description without `pii:read`."""
    need = await service.read_need(ctx, customer_id, need_id)
    set_etag(response, need.version)
    return view(ctx, need)


@router.patch(
    "/customers/{customer_id}/needs/{need_id}",
    tags=["needs"],
    summary="Update a need",
    response_model=NeedRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_need(
    ctx: Writer,
    customer_id: CustomerId,
    need_id: NeedId,
    patch: NeedUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> NeedRead:
    """Change the fields sent. Status moves open → in_progress → met | dropped; met or dropped
    needs can be reopened; other moves are **409**. Needs `customers:write` and `If-Match`.
    Publishes `need.updated` with the changed fields."""
    need = await service.update_need(ctx, customer_id, need_id, patch, if_match)
    set_etag(response, need.version)
    return view(ctx, need)
