"""Purchases and their refunds."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.interactions import repository as repo
from services.interactions import schemas, service
from services.interactions.api.common import (
    ETAG_HEADER,
    LIST_ERRORS,
    READ_ERRORS,
    UPDATE_ERRORS,
    Cursor,
    CustomerFilter,
    Limit,
    PurchasesCreator,
    PurchasesReader,
    PurchasesWriter,
    Since,
    Until,
    created_headers,
    refund_read,
    shown,
)
from shared.http import IdempotencyKeyHeader, IfMatch, check_if_match, etag_of, set_etag
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, Page
from shared.problems import problem_responses

router = APIRouter(prefix="/purchases", tags=["purchases"])


@router.post(
    "",
    status_code=201,
    summary="Record a purchase",
    response_model=schemas.PurchaseRead,
    responses={
        200: {
            "model": schemas.PurchaseRead,
            "description": "This customer already has a purchase with this `external_ref` and "
            "the same amount, cost and currency: it is returned, nothing is stored twice.",
        },
        201: {"headers": ETAG_HEADER, "description": "Recorded."},
        **problem_responses(401, 403, 422),
        409: problem_responses(409)[409]
        | {"description": "`external_ref` is already a different purchase of this customer"},
    },
)
async def record_purchase(
    ctx: PurchasesCreator,
    body: schemas.PurchaseCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record an order (needs `purchases:write`); margin = amount - cost.

    Idempotent per customer and `external_ref`: posting the same purchase again returns the
    stored one with **200** (not a second 201) and publishes nothing. The same reference with
    a different amount, cost or currency is a 409. Publishes `purchase.recorded`. Money is
    decimal (send strings like `"1250.00"`, at most 4 decimals). The customer need not be
    known yet.
    """

    async def create() -> Reply:
        purchase, created = await service.record_purchase(ctx, body)
        headers = created_headers(purchase, "/purchases")
        return Reply(schemas.PurchaseRead.of(purchase), 201 if created else 200, headers)

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/{purchase_id}",
    summary="Get a purchase",
    response_model=schemas.PurchaseRead,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
)
async def get_purchase(
    purchase_id: uuid.UUID, response: Response, ctx: PurchasesReader
) -> schemas.PurchaseRead:
    """One purchase with its refunded totals (needs `purchases:read`)."""
    purchase = await service.get_purchase(ctx, purchase_id)
    set_etag(response, purchase.version)
    return schemas.PurchaseRead.of(purchase)


@router.get(
    "", summary="List purchases", response_model=Page[schemas.PurchaseRead], responses=LIST_ERRORS
)
async def list_purchases(
    ctx: PurchasesReader,
    customer_id: CustomerFilter = None,
    status: schemas.PurchaseStatus | None = None,
    external_ref: Annotated[str | None, Query(max_length=200)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.PurchaseRead]:
    """Purchases, newest first (needs `purchases:read`)."""
    rows, next_cursor = await repo.list_purchases(
        ctx.session,
        customer_id=customer_id,
        status=status,
        external_ref=external_ref,
        window=(since, until),
        cursor=cursor,
        limit=limit,
    )
    return Page(items=[schemas.PurchaseRead.of(p) for p in rows], next_cursor=next_cursor)


@router.patch(
    "/{purchase_id}",
    summary="Change a purchase's status",
    response_model=schemas.PurchaseRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def change_purchase_status(
    purchase_id: uuid.UUID,
    body: schemas.PurchaseStatusUpdate,
    response: Response,
    ctx: PurchasesWriter,
    if_match: IfMatch = None,
) -> schemas.PurchaseRead:
    """Move a purchase forward (placed → paid → delivered) or cancel it (`purchases:write`).

    Needs `If-Match`. Cancelling publishes `purchase.cancelled` and is refused (409) once the
    purchase has refunds; going backwards is a 409.
    """
    purchase = await service.get_purchase(ctx, purchase_id, lock=True)
    check_if_match(if_match, purchase.version)
    purchase = await service.change_purchase_status(ctx, purchase, body.status)
    set_etag(response, purchase.version)
    return schemas.PurchaseRead.of(purchase)


@router.post(
    "/{purchase_id}/refunds",
    status_code=201,
    summary="Refund part or all of a purchase",
    response_model=schemas.RefundRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def refund_purchase(
    purchase_id: uuid.UUID,
    body: schemas.RefundCreate,
    ctx: PurchasesWriter,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatch = None,
) -> Response:
    """Refund an amount of a purchase (needs `purchases:write`).

    The refunded margin is amount x (margin / amount). A refund larger than what remains
    refundable is a 422 naming `body.amount`; a cancelled purchase cannot be refunded (409).
    Publishes `purchase.refunded`. Send `Idempotency-Key` so a retry never refunds twice.
    """

    async def create() -> Reply:
        purchase = await service.get_purchase(ctx, purchase_id, lock=True)
        if if_match is not None:
            check_if_match(if_match, purchase.version)
        refund = await service.refund_purchase(ctx, purchase, body)
        return Reply(refund_read(ctx, refund), 201, {"ETag": etag_of(purchase.version)})

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/{purchase_id}/refunds",
    summary="List a purchase's refunds",
    response_model=list[schemas.RefundRead],
    responses=READ_ERRORS,
)
async def list_refunds(purchase_id: uuid.UUID, ctx: PurchasesReader) -> list[schemas.RefundRead]:
    """Every refund of a purchase, oldest first (needs `purchases:read`)."""
    await service.get_purchase(ctx, purchase_id)
    found = await repo.refunds_of(ctx.session, purchase_id)
    return await shown(ctx, "refund", found, refund_read)
