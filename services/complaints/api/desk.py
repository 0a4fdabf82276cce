"""The service desk's configuration: SLA policies, holidays, teams, routing rules and canned
responses. Changing it needs `desk:configure` (managers and admins); reading `complaints:read`."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from services.complaints import configuration, views
from services.complaints.api.common import Configurer, Reader
from services.complaints.schemas import (
    CannedResponseIn,
    CannedResponseRead,
    CannedResponseUpdate,
    CaseType,
    HolidayIn,
    HolidayRead,
    Locale,
    RoutingRules,
    SlaPolicies,
    SlaPoliciesRead,
    TeamIn,
    TeamRead,
)
from shared.http import IdempotencyKeyHeader, IfMatch, etag_of, set_etag
from shared.idempotency import Reply, idempotent
from shared.problems import problem_responses

router = APIRouter(tags=["service desk"])


@router.get(
    "/sla-policies",
    response_model=SlaPoliciesRead,
    summary="SLA policies in matching order",
    responses=problem_responses(401, 403),
)
async def get_sla_policies(ctx: Reader) -> SlaPoliciesRead:
    """The policies set by `PUT /sla-policies`, in order, then the defaults (`builtin`): the
    severity × tier matrix of the settings (`COMPLAINTS_SLA_MATRIX`). A case takes the first
    policy whose every given criterion (type, subtype, severity, tier, channel) matches.
    Needs `complaints:read`."""
    return await configuration.sla_policies(ctx)


@router.put(
    "/sla-policies",
    response_model=SlaPoliciesRead,
    summary="Replace the SLA policies",
    responses=problem_responses(401, 403, 422),
)
async def put_sla_policies(body: SlaPolicies, ctx: Configurer) -> SlaPoliciesRead:
    """Set the ordered list (first match wins; the defaults stay after it). Each policy has
    first-response and resolution targets in SLA seconds, the states that pause its clock and
    its calendar (round the clock, or business hours in a time zone; holidays are skipped by
    business hours). Cases received from now on, and cases whose type, severity or tier
    changes, follow the new list. Needs `desk:configure`."""
    return await configuration.put_sla_policies(ctx, body)


@router.get(
    "/holidays",
    response_model=list[HolidayRead],
    summary="Holidays business calendars do not count",
    responses=problem_responses(401, 403, 422),
)
async def list_holidays(
    ctx: Reader, year: Annotated[int | None, Query(ge=1970, le=9999)] = None
) -> list[HolidayRead]:
    """Every holiday (of `year`), in date order. Needs `complaints:read`."""
    return [HolidayRead.model_validate(h) for h in await configuration.holidays(ctx, year)]


@router.put(
    "/holidays/{day}",
    response_model=HolidayRead,
    summary="Declare a holiday",
    responses=problem_responses(401, 403, 422),
)
async def put_holiday(day: date, body: HolidayIn, ctx: Configurer) -> HolidayRead:
    """A day (e.g. 2026-10-01, National Day) the SLA clocks of business calendars skip.
    Deadlines computed from now on skip it. Needs `desk:configure`."""
    return HolidayRead.model_validate(await configuration.put_holiday(ctx, day, body))


@router.delete(
    "/holidays/{day}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a holiday",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_holiday(day: date, ctx: Configurer) -> Response:
    """The day counts again. Needs `desk:configure`."""
    await configuration.delete_holiday(ctx, day)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/teams",
    response_model=list[TeamRead],
    summary="Teams with their members, skills, loads and queues",
    responses=problem_responses(401, 403),
)
async def list_teams(ctx: Reader) -> list[TeamRead]:
    """Every team: lead, members with skills and open cases, cases waiting in its queue.
    Needs `complaints:read`."""
    return await configuration.teams(ctx)


@router.put(
    "/teams/{team}",
    response_model=TeamRead,
    summary="Create or replace a team",
    responses=problem_responses(401, 403, 422),
)
async def put_team(team: str, body: TeamIn, ctx: Configurer) -> TeamRead:
    """The team's lead (level-1 escalations go to them) and its members with their skills
    (routing picks the least-loaded active member with the rule's skill). Members no longer
    listed are deactivated. Needs `desk:configure`."""
    return await configuration.put_team(ctx, team, body)


@router.get(
    "/routing-rules",
    response_model=RoutingRules,
    summary="Routing rules in matching order",
    responses=problem_responses(401, 403),
)
async def get_routing_rules(ctx: Reader) -> RoutingRules:
    """A case registered without `assignee` or `team` goes by the first rule whose every given
    criterion (type, subtype, category, tier) matches. Needs `complaints:read`."""
    return await configuration.routing_rules(ctx)


@router.put(
    "/routing-rules",
    response_model=RoutingRules,
    summary="Replace the routing rules",
    responses=problem_responses(401, 403, 422),
)
async def put_routing_rules(body: RoutingRules, ctx: Configurer) -> RoutingRules:
    """Set the ordered list; each rule names a team and the skill its member needs. Needs
    `desk:configure`."""
    return await configuration.put_routing_rules(ctx, body)


@router.post(
    "/responses",
    status_code=status.HTTP_201_CREATED,
    response_model=CannedResponseRead,
    summary="Add a canned response",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_response(
    body: CannedResponseIn, ctx: Configurer, idempotency_key: IdempotencyKeyHeader = None
) -> Any:
    """A reply text for a case type (or every type) in a locale, which agents insert into a
    case's notes (`POST /cases/{case_id}/notes` with `response_id`). Needs `desk:configure`;
    send `Idempotency-Key` to make retries safe."""

    async def create() -> Reply:
        row = await configuration.create_response(ctx, body)
        headers = {"ETag": etag_of(row.version), "Location": f"/responses/{row.id}"}
        return Reply(views.response(row), 201, headers)

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/responses",
    response_model=list[CannedResponseRead],
    summary="Canned responses for a case type and locale",
    responses=problem_responses(401, 403, 422),
)
async def list_responses(
    ctx: Reader,
    type: Annotated[CaseType | None, Query(description="With those for every type.")] = None,
    locale: Annotated[
        Locale | None, Query(description="`zh-CN` also finds `zh`.", examples=["zh-CN"])
    ] = None,
) -> list[CannedResponseRead]:
    """Needs `complaints:read`."""
    return [views.response(r) for r in await configuration.responses(ctx, type, locale)]


@router.get(
    "/responses/{response_id}",
    response_model=CannedResponseRead,
    summary="Read a canned response",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_response(
    response_id: uuid.UUID, response: Response, ctx: Reader
) -> CannedResponseRead:
    """Needs `complaints:read`. The ETag is the version."""
    row = await configuration.response(ctx, response_id)
    set_etag(response, row.version)
    return views.response(row)


@router.patch(
    "/responses/{response_id}",
    response_model=CannedResponseRead,
    summary="Change a canned response",
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_response(
    response_id: uuid.UUID,
    body: CannedResponseUpdate,
    response: Response,
    ctx: Configurer,
    if_match: IfMatch = None,
) -> CannedResponseRead:
    """Send only the fields to change, with `If-Match`. Needs `desk:configure`."""
    row = await configuration.update_response(ctx, response_id, body, if_match)
    set_etag(response, row.version)
    return views.response(row)


@router.delete(
    "/responses/{response_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a canned response",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_response(response_id: uuid.UUID, ctx: Configurer) -> Response:
    """Notes that inserted it keep their text. Needs `desk:configure`."""
    await configuration.delete_response(ctx, response_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
