"""The programme's liability."""

from __future__ import annotations

from fastapi import APIRouter

from services.loyalty import service
from services.loyalty.api.common import Reader
from services.loyalty.schemas import LiabilityReport
from shared.problems import problem_responses

router = APIRouter(tags=["reports"])


@router.get(
    "/reports/liability",
    response_model=LiabilityReport,
    summary="Points outstanding, their value, and when they expire",
    responses=problem_responses(401, 403),
)
async def liability(ctx: Reader) -> LiabilityReport:
    """Points outstanding now (available and pending, less what members owe) and their value
    at `LOYALTY_POINT_VALUE` per point, with the open points expiring at the end of each month.
    Needs `loyalty:read`.
    """
    return await service.liability(ctx)
