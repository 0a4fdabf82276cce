"""Cases of every type: intake, the work queue, the management queue, reading and details."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from services.complaints import repository as repo
from services.complaints import service, views
from services.complaints.api.common import IntakeWriter, Reader, Writer
from services.complaints.schemas import (
    CaseCreate,
    CaseRead,
    CaseStatus,
    CaseType,
    CaseUpdate,
    Category,
    ServiceSubtype,
    Severity,
    SlaStatus,
)
from shared.http import IdempotencyKeyHeader, IfMatch, etag_of, set_etag
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from shared.problems import problem_responses

router = APIRouter(tags=["cases"])


@router.post(
    "/cases",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseRead,
    summary="Register a case of any type",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_case(
    body: CaseCreate, ctx: IntakeWriter, idempotency_key: IdempotencyKeyHeader = None
) -> Any:
    """Register an inquiry, a service request (installation, repair, maintenance, other),
    a technical-support request, a suggestion, a complaint or a claim (claim, return or
    exchange of a purchase). Needs `complaints:write`.

    - **Reference**: each case gets a human reference, type prefix, year and per-year sequence
      (`SR-2026-000123`; IQ, SR, TS, SG, CP, CL).
    - **SLA**: targets, pause states and calendar come from the first matching SLA policy
      (`GET /sla-policies`: type, subtype, severity, customer tier, channel; the severity ×
      tier defaults last). Holidays are not counted by business calendars.
    - **Routing**: `assignee`, or `team` (its least-loaded active agent), or else the first
      matching routing rule (`GET /routing-rules`): the least-loaded active member of its team
      with its skill; when none has it, the case waits in the team's queue (`case.queued`).
    - **Claims** must come within the return window (`COMPLAINTS_RETURN_WINDOW_DAYS`, 7 days
      from delivery): outside it a 422 `return-window-passed`, unless a manager sends
      `override_return_window` (needs `cases:override`).
    - `critical` cases go to the management queue at once (`case.escalated`).

    Publishes `case.received` (complaints also `complaint.received`). Send `Idempotency-Key`
    to make retries safe.
    """

    async def register() -> Reply:
        c, read = await service.register(ctx, body, partial(views.case, ctx))
        read.reference = c.reference  # numbered by the statement after the view was built
        headers = {"ETag": etag_of(c.version), "Location": f"/cases/{c.id}"}
        return Reply(read, 201, headers)

    return await idempotent(ctx, idempotency_key, register)


@router.get(
    "/cases",
    response_model=Page[CaseRead],
    summary="Work queue: list and filter cases of every type, nearest deadline first",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_cases(
    ctx: Reader,
    type_: Annotated[
        list[CaseType] | None, Query(alias="type", description="Repeat for several.")
    ] = None,
    subtype: Annotated[list[ServiceSubtype] | None, Query()] = None,
    status_: Annotated[list[CaseStatus] | None, Query(alias="status")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    category: Annotated[list[Category] | None, Query()] = None,
    sla_status: Annotated[list[SlaStatus] | None, Query()] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
    unassigned: Annotated[
        bool, Query(description="Only cases nobody holds (with `team`: the team's queue).")
    ] = False,
    customer_id: uuid.UUID | None = None,
    escalated: Annotated[bool | None, Query()] = None,
    revisit_due: Annotated[bool, Query(description="Only resolved cases due a revisit.")] = False,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[CaseRead]:
    """Cases matching every given filter, open ones first, nearest deadline first.

    Needs `complaints:read`; contact details need `pii:read` too.
    """
    filters = repo.QueueFilter(
        type=list(type_ or []) or None,
        subtype=list(subtype or []) or None,
        status=list(status_ or []) or None,
        severity=list(severity or []) or None,
        category=list(category or []) or None,
        sla_status=list(sla_status or []) or None,
        assignee=assignee,
        team=team,
        unassigned=unassigned,
        customer_id=customer_id,
        escalated=escalated,
        revisit_due_before=ctx.now() if revisit_due else None,
    )
    items, next_cursor = await service.queue(ctx, filters, cursor, limit)
    return Page(items=[views.case(ctx, c) for c in items], next_cursor=next_cursor)


@router.get(
    "/queues/management",
    response_model=Page[CaseRead],
    summary="The management queue: open cases escalated to level 2 and up, waiting",
    responses=problem_responses(400, 401, 403, 422),
)
async def management_queue(
    ctx: Reader,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[CaseRead]:
    """Open cases escalated to management (a breach escalated twice, a critical severity, a
    manual escalation) that nobody has taken yet, nearest deadline first. Assigning one
    (`POST /cases/{case_id}/assignment`) takes it out. Needs `complaints:read`."""
    filters = repo.QueueFilter(queue=service.MANAGEMENT_QUEUE, open_only=True)
    items, next_cursor = await service.queue(ctx, filters, cursor, limit)
    return Page(items=[views.case(ctx, c) for c in items], next_cursor=next_cursor)


@router.get(
    "/cases/{case_id}",
    response_model=CaseRead,
    summary="Read a case with its SLA status and remaining time",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_case(case_id: uuid.UUID, response: Response, ctx: Reader) -> CaseRead:
    """One case: type, reference, state, SLA policy, status and remaining time, outcome.

    Needs `complaints:read` (contact details also `pii:read`). The ETag is the version.
    """
    c = await service.read(ctx, case_id)
    set_etag(response, c.version)
    return views.case(ctx, c)


@router.patch(
    "/cases/{case_id}",
    response_model=CaseRead,
    summary="Update a case's type, severity and investigation details",
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_case(
    case_id: uuid.UUID,
    body: CaseUpdate,
    response: Response,
    ctx: Writer,
    if_match: IfMatch = None,
) -> CaseRead:
    """Set type or subtype, severity, category, wording, root cause and resolution.

    Needs `complaints:write` and `If-Match` with the ETag of your last read. A change of type,
    subtype or severity re-applies the SLA policies keeping the time already paused; raising
    the severity to `critical` escalates to the management queue, once in the case's life.
    """
    c = await service.update(ctx, case_id, body, if_match)
    set_etag(response, c.version)
    return views.case(ctx, c)
