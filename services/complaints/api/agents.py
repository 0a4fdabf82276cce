"""Agents and their teams, for automatic assignment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.complaints import service, views
from services.complaints.api.common import Reader
from services.complaints.schemas import AgentRead, AgentUpsert
from shared.context import RequestContext, context
from shared.problems import problem_responses

router = APIRouter(tags=["agents"])

# Staffing decides who gets which complaints: a manager's act, not an agent's.
Staffer = Annotated[RequestContext, context("agents:write")]


@router.put(
    "/agents/{agent_id}",
    response_model=AgentRead,
    summary="Register or update an agent and their team",
    responses=problem_responses(401, 403, 422),
)
async def put_agent(
    agent_id: Annotated[str, Path(min_length=1, max_length=200, examples=["agent-7"])],
    body: AgentUpsert,
    ctx: Staffer,
) -> AgentRead:
    """Agents (by their token subject) belong to one team; automatic assignment picks the
    active agent of a team with the fewest open complaints. Needs `agents:write`, which the
    `manager` and `admin` roles hold and the `agent` role does not."""
    return views.agent(await service.put_agent(ctx, agent_id, body))


@router.get(
    "/agents",
    response_model=list[AgentRead],
    summary="Agents with their open complaint load",
    responses=problem_responses(401, 403, 422),
)
async def list_agents(
    ctx: Reader, team: Annotated[str | None, Query(max_length=100)] = None
) -> list[AgentRead]:
    """Every agent (optionally of one team) and how many open complaints each has.
    Needs `complaints:read`."""
    return [views.agent(row) for row in await service.agents(ctx, team)]
