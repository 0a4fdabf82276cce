"""Redemptions (spending points, all or nothing) and the coupons they issue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from services.loyalty import service
from services.loyalty.api.common import Reader, Writer
from services.loyalty.schemas import CouponRead, RedemptionCreate, RedemptionRead
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.problems import problem_responses

router = APIRouter(tags=["redemptions"])

CouponCode = Annotated[
    str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$", examples=["LY-7K2Q9XWM4R6T"])
]


@router.post(
    "/redemptions",
    status_code=status.HTTP_201_CREATED,
    response_model=RedemptionRead,
    summary="Spend points on a reward or an amount of points",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def redeem(
    body: RedemptionCreate, ctx: Writer, idempotency_key: IdempotencyKeyHeader = None
) -> Any:
    """Spend `points`, or a reward's `points_cost` (`reward_code`), from the member's available
    points, soonest-expiring lots first. All or nothing: not enough spendable points is a 409
    `insufficient-points` naming `spendable` and `needed`, and nothing changes. Concurrent
    redemptions of one member run one after another, so together they never spend more than
    the balance. A `coupon` reward issues a unique single-use code. Points owed after earlier
    reversals are settled first. Publishes `loyalty.points_redeemed`. Needs `loyalty:write`;
    send `Idempotency-Key` to make retries safe.
    """

    async def run() -> Reply:
        redemption = await service.redeem(ctx, body)
        return Reply(redemption, 201, {"Location": f"/redemptions/{redemption.id}"})

    return await idempotent(ctx, idempotency_key, run)


@router.get(
    "/redemptions/{redemption_id}",
    response_model=RedemptionRead,
    summary="A redemption and its coupon",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_redemption(redemption_id: uuid.UUID, ctx: Reader) -> RedemptionRead:
    """Needs `loyalty:read`."""
    return await service.read_redemption(ctx, redemption_id)


@router.post(
    "/redemptions/{redemption_id}/cancel",
    response_model=RedemptionRead,
    summary="Cancel a redemption: its points go back to the lots they came from",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def cancel_redemption(redemption_id: uuid.UUID, ctx: Writer) -> RedemptionRead:
    """The points return to the very lots they were drawn from (with their expiry dates), the
    reward's stock is given back and its coupon becomes void. A redemption whose coupon was
    used, or one already cancelled, is a 409. Publishes `loyalty.redemption_cancelled`.
    Needs `loyalty:write`.
    """
    return await service.cancel_redemption(ctx, redemption_id)


@router.get(
    "/coupons/{coupon_code}",
    response_model=CouponRead,
    summary="A coupon and whether it was used",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_coupon(coupon_code: CouponCode, ctx: Reader) -> CouponRead:
    """Needs `loyalty:read`."""
    return await service.read_coupon(ctx, coupon_code)


@router.post(
    "/coupons/{coupon_code}/use",
    response_model=CouponRead,
    summary="Use a coupon (once)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def use_coupon(coupon_code: CouponCode, ctx: Writer) -> CouponRead:
    """Mark the coupon used. A second use is a 409 `coupon-already-used`; a void (its
    redemption was cancelled) or expired coupon is a 409 `coupon-not-usable`. Needs
    `loyalty:write`.
    """
    return await service.use_coupon(ctx, coupon_code)
