"""Members: enrolment, the member with its balance and level, and its points ledger."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from services.loyalty import service
from services.loyalty.api.common import Manager, Reader, Writer
from services.loyalty.schemas import AdjustmentCreate, Ledger, MemberCreate, MemberRead
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT
from shared.problems import problem_responses

router = APIRouter(tags=["members"])


@router.post(
    "/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    summary="Enrol a customer in the loyalty programme",
    responses={
        **problem_responses(401, 403, 409, 422),
        200: {"description": "Already a member: the member as it is."},
    },
)
async def enrol(
    body: MemberCreate, ctx: Writer, idempotency_key: IdempotencyKeyHeader = None
) -> Any:
    """Make the customer a member at the base level (201), or answer the existing member (200).

    Customers also become members with their first earning purchase. Marketing messages about
    the programme follow the customer's consents in profiles, not this enrolment. An erased
    customer is a 409. Needs `loyalty:write`; send `Idempotency-Key` to make retries safe.
    """

    async def run() -> Reply:
        member, created = await service.enrol(ctx, body.customer_id)
        headers = {"Location": f"/members/{member.customer_id}"}
        return Reply(member, 201 if created else 200, headers)

    return await idempotent(ctx, idempotency_key, run)


@router.post(
    "/members/{customer_id}/adjustments",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberRead,
    summary="Credit or debit a member's points by hand",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def adjust(
    customer_id: uuid.UUID,
    body: AdjustmentCreate,
    ctx: Manager,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """An `adjust` ledger entry: a credit is a lot spendable at once (expiring like any other),
    a debit takes available points, soonest-expiring first; more than the spendable balance is
    a 409 `insufficient-points`. Answers the member after the change. Needs `loyalty:manage`;
    send `Idempotency-Key` to make retries safe.
    """

    async def run() -> Reply:
        return Reply(await service.adjust(ctx, customer_id, body), 201)

    return await idempotent(ctx, idempotency_key, run)


@router.get(
    "/members/{customer_id}",
    response_model=MemberRead,
    summary="A member: level, balance (available, pending, owed) and points earned",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_member(customer_id: uuid.UUID, ctx: Reader) -> MemberRead:
    """The member's level, its balance and the points earned in the level window.

    `balance.available` is spendable now, `pending` is inside the return window, `debt` is
    owed after a reversal larger than the lots; a redemption may spend `spendable`. A merged
    duplicate's id answers its survivor. The birthday needs `pii:read`. Needs `loyalty:read`.
    """
    return await service.read_member(ctx, customer_id)


@router.get(
    "/members/{customer_id}/ledger",
    response_model=Ledger,
    summary="The points ledger: every entry, the open lots and the balance they explain",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def read_ledger(
    customer_id: uuid.UUID,
    ctx: Reader,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Ledger:
    """Every change of the member's points, oldest first: `earn`, `reverse` (refund or
    cancellation; `uncovered` / `negative` when the lots did not suffice), `redeem`, `restore`
    (a cancelled redemption), `expire`, `adjust`, `bonus`. `entries_total` is the sum of all
    entries and equals available + pending - debt; `lots` are the open lots, soonest-expiring
    (spent first) first. Needs `loyalty:read`.
    """
    return await service.ledger(ctx, customer_id, cursor, limit)
