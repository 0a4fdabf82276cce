"""The programme's rules: membership levels and the rewards catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from services.loyalty import service
from services.loyalty.api.common import Manager, Reader
from services.loyalty.schemas import LevelRead, LevelsPut, RewardPut, RewardRead
from shared.http import IfMatch, set_etag
from shared.problems import problem_responses

router = APIRouter(tags=["programme"])

RewardCode = Annotated[
    str, Path(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_-]+$", examples=["COFFEE-10"])
]


@router.get(
    "/levels",
    response_model=list[LevelRead],
    summary="Membership levels, lowest first",
    responses=problem_responses(401, 403),
)
async def list_levels(ctx: Reader) -> list[LevelRead]:
    """Each level's threshold (points earned by purchases in the trailing window, default 365
    days, net of reversals; not the balance) and its earning multiplier. Needs `loyalty:read`.
    """
    return [LevelRead.model_validate(x, from_attributes=True) for x in await service.levels(ctx)]


@router.put(
    "/levels",
    response_model=list[LevelRead],
    summary="Replace the membership levels",
    responses=problem_responses(401, 403, 422),
)
async def put_levels(body: LevelsPut, ctx: Manager) -> list[LevelRead]:
    """The whole set at once; one level must have threshold 0 (where every member starts).
    Members move up at their next purchase that reaches a higher level, down by one level at
    most at the monthly evaluation. Needs `loyalty:manage`.
    """
    new = await service.put_levels(ctx, body.levels)
    return [LevelRead.model_validate(x, from_attributes=True) for x in new]


@router.get(
    "/rewards",
    response_model=list[RewardRead],
    summary="The rewards catalogue",
    responses=problem_responses(401, 403, 422),
)
async def list_rewards(
    ctx: Reader,
    active: Annotated[bool, Query(description="Only active rewards.")] = False,
) -> list[RewardRead]:
    """Every reward with its points cost, stock, per-customer limit and validity. Needs
    `loyalty:read`."""
    return await service.rewards(ctx, active)


@router.get(
    "/rewards/{reward_code}",
    response_model=RewardRead,
    summary="A reward",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_reward(reward_code: RewardCode, response: Response, ctx: Reader) -> RewardRead:
    """Needs `loyalty:read`. The ETag is the version (send it as `If-Match` to replace)."""
    reward = await service.read_reward(ctx, reward_code)
    set_etag(response, reward.version)
    return reward


@router.put(
    "/rewards/{reward_code}",
    response_model=RewardRead,
    summary="Create or replace a reward",
    responses={**problem_responses(401, 403, 412, 422, 428), 201: {"description": "Created."}},
)
async def put_reward(
    reward_code: RewardCode,
    body: RewardPut,
    response: Response,
    ctx: Manager,
    if_match: IfMatch = None,
) -> Any:
    """Create the reward (201), or replace it (200; `If-Match` with its ETag is required:
    missing is 428, stale is 412). `kind: coupon` rewards issue a unique single-use code per
    redemption. Needs `loyalty:manage`.
    """
    reward, created = await service.put_reward(ctx, reward_code, body, if_match)
    set_etag(response, reward.version)
    response.status_code = 201 if created else 200
    return reward
