"""Data quality: duplicate candidates, duplicate pairs and merging."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Path

from services.profiles import service
from services.profiles.api.common import Cursor, CustomerId, Limit, Reader
from services.profiles.api.common import router as new_router
from services.profiles.models import Customer
from services.profiles.schemas import DuplicateMatch, DuplicatePair, MergeRequest, MergeResult
from shared.context import RequestContext, context
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, Page
from shared.problems import problem_responses

router = new_router()
Merger = Annotated[RequestContext, context("customers:merge")]


def match_view(ctx: RequestContext, c: Customer, matched_on: list[str]) -> DuplicateMatch:
    match = {
        "customer_id": c.id,
        "customer_number": c.customer_number,
        "kind": c.kind,
        "display_name": c.display_name,
        "matched_on": matched_on,
    }
    return DuplicateMatch.model_validate(ctx.mask("duplicates", match))


@router.get(
    "/customers/{customer_id}/duplicates",
    tags=["data quality"],
    summary="Duplicate candidates of a customer",
    response_model=list[DuplicateMatch],
    responses=problem_responses(401, 403, 404, 422),
)
async def duplicates(ctx: Reader, customer_id: CustomerId) -> list[DuplicateMatch]:
    """Other customers (not merged away) with the same e-mail, the same phone, or the same name
    within the same company (organisations: the same name). Needs `customers:read`; persons'
    names are masked without `pii:read`. Compared through keyed blind indexes of the encrypted
    values."""
    matches = await service.duplicate_candidates(ctx, customer_id)
    return [match_view(ctx, c, m) for c, m in matches]


@router.get(
    "/duplicates",
    tags=["data quality"],
    summary="Duplicate pairs across the archive",
    response_model=Page[DuplicatePair],
    responses=problem_responses(400, 401, 403, 422),
)
async def duplicate_pairs(
    ctx: Reader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[DuplicatePair]:
    """Every pair of live (not merged, not erased) customers with the same e-mail, the same
    phone, or the same name within the same company, for clean-up work: review a pair, then
    `POST /customers/{id}/merge`. Needs `customers:read`."""
    pairs, next_cursor = await service.duplicate_pairs(ctx, cursor, limit)
    return Page[DuplicatePair](
        items=[
            DuplicatePair(customer=match_view(ctx, a, m), duplicate=match_view(ctx, b, m))
            for a, b, m in pairs
        ],
        next_cursor=next_cursor,
    )


@router.post(
    "/customers/{customer_id}/merge",
    tags=["data quality"],
    summary="Merge a duplicate into this customer",
    response_model=MergeResult,
    responses=problem_responses(401, 403, 404, 422),
)
async def merge(
    ctx: Merger,
    customer_id: Annotated[uuid.UUID, Path(description="The survivor.")],
    data: MergeRequest,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Merge `duplicate_id` into the survivor of the path. Needs `customers:merge` (roles
    `manager` and `admin`; agents may not merge).

    Choose per field whose value survives (`survivorship`); by default the survivor's value is
    kept unless it is empty. Tags are united. Contacts, needs and consent records move to the
    survivor; the duplicate keeps its id with status `merged` and `merged_into_id`. With
    `dry_run=true` the answer previews the result and nothing changes. Publishes
    `customer.merged` (other services re-point the duplicate's records) and `customer.updated`
    for changed survivor fields.
    """

    async def run() -> Reply:
        result = await service.merge(ctx, customer_id, data)
        survivor = ctx.mask("customer", result.survivor)
        return Reply(result.model_copy(update={"survivor": survivor}), 200)

    return await idempotent(ctx, idempotency_key, run)
