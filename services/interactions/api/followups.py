"""Follow-ups: planned contacts, their life cycle, and an agent's agenda."""

from __future__ import annotations

import uuid
from datetime import UTC, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Response

from services.interactions import repository as repo
from services.interactions import schemas, service
from services.interactions.api.common import (
    ETAG_HEADER,
    LIST_ERRORS,
    READ_ERRORS,
    UPDATE_ERRORS,
    WRITE_ERRORS,
    Cursor,
    CustomerFilter,
    FollowupsReader,
    FollowupsWriter,
    Limit,
    created_headers,
    followup_read,
    shown,
)
from shared.contracts.common import UtcDatetime
from shared.http import IdempotencyKeyHeader, IfMatch, check_if_match, set_etag
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, Page
from shared.problems import Unprocessable

router = APIRouter(tags=["follow-ups"])
AGENDA_MAX = 500


@router.post(
    "/followups",
    status_code=201,
    summary="Schedule a follow-up",
    response_model=schemas.FollowupRead,
    responses={201: {"headers": ETAG_HEADER}, **WRITE_ERRORS},
)
async def schedule_followup(
    ctx: FollowupsWriter,
    body: schemas.FollowupCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Plan a contact with a customer by `due_at` (needs `followups:write`).

    Publishes `followup.scheduled`; once past due and still open, `followup.overdue` is
    published once. Revisit and care follow-ups are also created by the service itself.
    """

    async def create() -> Reply:
        followup = await service.schedule_followup(ctx, body)
        headers = created_headers(followup, "/followups")
        return Reply(followup_read(ctx, followup), 201, headers)

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/followups/{followup_id}",
    summary="Get a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
)
async def get_followup(
    followup_id: uuid.UUID, response: Response, ctx: FollowupsReader
) -> schemas.FollowupRead:
    """One follow-up (needs `followups:read`)."""
    followup = await service.get_followup(ctx, followup_id)
    set_etag(response, followup.version)
    [shown_one] = await shown(ctx, "followup", [followup], followup_read)
    return shown_one


@router.get(
    "/followups",
    summary="List follow-ups",
    response_model=Page[schemas.FollowupRead],
    responses=LIST_ERRORS,
)
async def list_followups(
    ctx: FollowupsReader,
    customer_id: CustomerFilter = None,
    assignee_id: Annotated[str | None, Query(max_length=200)] = None,
    status: schemas.FollowupStatus | None = None,
    kind: schemas.FollowupKind | None = None,
    overdue: Annotated[bool | None, Query(description="Only open ones past due (or not).")] = None,
    due_from: UtcDatetime | None = None,
    due_to: UtcDatetime | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.FollowupRead]:
    """Follow-ups ordered by due time, earliest first (needs `followups:read`)."""
    now = ctx.now()
    rows, next_cursor = await repo.list_followups(
        ctx.session,
        now=now,
        customer_id=customer_id,
        assignee_id=assignee_id,
        status=status,
        kind=kind,
        overdue=overdue,
        window=(due_from, due_to),
        cursor=cursor,
        limit=limit,
    )
    items = await shown(ctx, "followup", rows, lambda c, f: followup_read(c, f, now))
    return Page(items=items, next_cursor=next_cursor)


@router.patch(
    "/followups/{followup_id}",
    summary="Reschedule or reassign a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def update_followup(
    followup_id: uuid.UUID,
    body: schemas.FollowupUpdate,
    response: Response,
    ctx: FollowupsWriter,
    if_match: IfMatch = None,
) -> schemas.FollowupRead:
    """Change the due time, assignee or note of an open follow-up (needs `followups:write`).

    Needs `If-Match` (428 without, 412 if stale). A new due time or assignee publishes
    `followup.scheduled` again, and the follow-up can go overdue again.
    """
    followup = await service.get_followup(ctx, followup_id, lock=True)
    check_if_match(if_match, followup.version)
    followup = await service.update_followup(ctx, followup, body)
    set_etag(response, followup.version)
    return followup_read(ctx, followup)


@router.post(
    "/followups/{followup_id}/complete",
    summary="Complete a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def complete_followup(
    followup_id: uuid.UUID,
    body: schemas.FollowupComplete,
    response: Response,
    ctx: FollowupsWriter,
    if_match: IfMatch = None,
) -> schemas.FollowupRead:
    """Mark an open follow-up done, linking the interaction that did it (`followups:write`).

    Publishes `followup.completed`. `If-Match` is optional here; when sent it must match.
    Completing a follow-up that is not open is a 409.
    """
    followup = await service.get_followup(ctx, followup_id, lock=True)
    if if_match is not None:
        check_if_match(if_match, followup.version)
    followup = await service.complete_followup(ctx, followup, body)
    set_etag(response, followup.version)
    return followup_read(ctx, followup)


@router.post(
    "/followups/{followup_id}/cancel",
    summary="Cancel a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def cancel_followup(
    followup_id: uuid.UUID,
    response: Response,
    ctx: FollowupsWriter,
    if_match: IfMatch = None,
) -> schemas.FollowupRead:
    """Cancel an open follow-up (needs `followups:write`); it will never go overdue."""
    followup = await service.get_followup(ctx, followup_id, lock=True)
    if if_match is not None:
        check_if_match(if_match, followup.version)
    followup = await service.cancel_followup(ctx, followup)
    set_etag(response, followup.version)
    return followup_read(ctx, followup)


@router.get(
    "/agenda",
    summary="An agent's agenda: overdue, due today, upcoming",
    response_model=schemas.Agenda,
    responses=LIST_ERRORS,
)
async def agenda(
    ctx: FollowupsReader,
    assignee_id: Annotated[
        str | None,
        Query(max_length=200, description="The agent; defaults to the caller (token subject)."),
    ] = None,
    tz: Annotated[str, Query(description="IANA time zone that defines 'today'.")] = "UTC",
    days: Annotated[int, Query(ge=1, le=90, description="How far `upcoming` looks ahead.")] = 7,
) -> schemas.Agenda:
    """Open follow-ups of one agent (needs `followups:read`), at most 500 per group.

    `overdue`: past due now. `due_today`: due between now and the end of today in `tz`.
    `upcoming`: due after today, within `days` days.
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise Unprocessable(
            f"Unknown time zone {tz!r}",
            errors=[{"field": "query.tz", "message": "not an IANA zone", "type": "value_error"}],
        ) from exc
    agent = assignee_id or ctx.actor
    now = ctx.now()
    local_midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    end_of_today = (local_midnight + timedelta(days=1)).astimezone(UTC)
    horizon = (local_midnight + timedelta(days=1 + days)).astimezone(UTC)
    groups = await repo.agenda(ctx.session, agent, [now, end_of_today, horizon], AGENDA_MAX)
    await ctx.audit_reads(("followup", f, f.customer_id) for group in groups for f in group)
    overdue, due_today, upcoming = ([followup_read(ctx, f, now) for f in g] for g in groups)
    return schemas.Agenda(
        assignee_id=agent, overdue=overdue, due_today=due_today, upcoming=upcoming
    )
