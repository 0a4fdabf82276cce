"""Complaints: the complaint-type view of the service desk, kept for existing clients
(intake, the work queue, reading and investigation details answer as they always have)."""

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
    Category,
    ComplaintCreate,
    ComplaintRead,
    ComplaintUpdate,
    Severity,
    SlaStatus,
    Status,
)
from shared.http import IdempotencyKeyHeader, IfMatch, etag_of, set_etag
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from shared.problems import problem_responses

router = APIRouter(tags=["complaints"])


@router.post(
    "/complaints",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintRead,
    summary="Register a complaint",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_complaint(
    body: ComplaintCreate, ctx: IntakeWriter, idempotency_key: IdempotencyKeyHeader = None
) -> Any:
    """Register a complaint received through any channel (a complaint-type case: the same as
    `POST /cases` with `type: complaint`). Needs `complaints:write`.

    The SLA deadlines (first response and resolution) come from the first matching SLA policy
    (`GET /sla-policies`; by default the severity × customer-tier matrix); the tier is the
    customer's latest ABC tier (unknown customers get the default tier). `critical` complaints
    are escalated to the management queue at once (`complaint.escalated`). Give `team` to
    assign automatically to the team's least-loaded agent, or `assignee` directly; with
    neither, the routing rules decide. Publishes `complaint.received` (and `case.received`).
    Send `Idempotency-Key` to make retries safe.
    """

    async def register() -> Reply:
        # The body was validated as a ComplaintCreate, whose fields have the same rules.
        case = CaseCreate.model_construct(
            type="complaint",
            subtype=None,
            customer_id=body.customer_id,
            channel=body.channel,
            contact=body.complainant,
            subject=body.subject,
            description=body.description,
            category=body.category,
            severity=body.severity,
            related_purchase_id=body.related_purchase_id,
            related_interaction_id=body.related_interaction_id,
            claim=None,
            assignee=body.assignee,
            team=body.team,
        )
        c, read = await service.register(ctx, case, partial(views.complaint, ctx))
        headers = {"ETag": etag_of(c.version), "Location": f"/complaints/{c.id}"}
        return Reply(read, 201, headers)

    return await idempotent(ctx, idempotency_key, register)


@router.get(
    "/complaints",
    response_model=Page[ComplaintRead],
    summary="Work queue: list and filter complaints, nearest deadline first",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_complaints(
    ctx: Reader,
    status_: Annotated[
        list[Status] | None, Query(alias="status", description="Repeat for several.")
    ] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    category: Annotated[list[Category] | None, Query()] = None,
    sla_status: Annotated[
        list[SlaStatus] | None, Query(description="on_track, warning or breached.")
    ] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
    customer_id: uuid.UUID | None = None,
    escalated: Annotated[bool | None, Query(description="Only (not) escalated ones.")] = None,
    revisit_due: Annotated[
        bool,
        Query(description="Only resolved complaints whose revisit is due now (to close them)."),
    ] = False,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ComplaintRead]:
    """Complaints matching every given filter, sorted by the deadline that matters now.

    Open complaints come first, nearest deadline (first response while `received`, resolution
    afterwards) first; resolved and closed ones last. `revisit_due=true` lists the resolved
    complaints whose revisit is due (close them with the revisit's outcome).
    Needs `complaints:read`; complainant details need `pii:read` too.
    """
    filters = repo.QueueFilter(
        type=["complaint"],
        status=list(status_ or []) or None,
        severity=list(severity or []) or None,
        category=list(category or []) or None,
        sla_status=list(sla_status or []) or None,
        assignee=assignee,
        team=team,
        customer_id=customer_id,
        escalated=escalated,
        revisit_due_before=ctx.now() if revisit_due else None,
    )
    items, next_cursor = await service.queue(ctx, filters, cursor, limit)
    return Page(items=[views.complaint(ctx, c) for c in items], next_cursor=next_cursor)


@router.get(
    "/complaints/{complaint_id}",
    response_model=ComplaintRead,
    summary="Read a complaint with its SLA status and remaining time",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_complaint(complaint_id: uuid.UUID, response: Response, ctx: Reader) -> ComplaintRead:
    """One complaint: state, SLA status and remaining time, investigation and resolution.

    Needs `complaints:read` (complainant details also `pii:read`). The ETag is the version.
    """
    c = await service.read(ctx, complaint_id, "complaint")
    set_etag(response, c.version)
    return views.complaint(ctx, c)


@router.patch(
    "/complaints/{complaint_id}",
    response_model=ComplaintRead,
    summary="Update investigation and resolution details",
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_complaint(
    complaint_id: uuid.UUID,
    body: ComplaintUpdate,
    response: Response,
    ctx: Writer,
    if_match: IfMatch = None,
) -> ComplaintRead:
    """Set root cause (categorised), resolution text, category, severity or wording.

    Needs `complaints:write` and `If-Match` with the ETag of your last read. A severity change
    re-applies the SLA policies (the time already paused is kept); raising it to `critical`
    escalates to the management queue, once.
    """
    c = await service.update(ctx, complaint_id, body, if_match, "complaint")
    set_etag(response, c.version)
    return views.complaint(ctx, c)
