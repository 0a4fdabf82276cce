"""A complaint's workflow: state transitions, assignment, escalation and the customer's rating.

Each answers the complaint as it is after the change, with its new ETag.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from services.complaints import service, views
from services.complaints.api.common import Reader, Writer
from services.complaints.models import Complaint
from services.complaints.schemas import (
    AssignmentRequest,
    ComplaintRead,
    EscalationRequest,
    RatingRequest,
    TransitionRead,
    TransitionRequest,
)
from shared.context import RequestContext
from shared.http import IfMatch, set_etag
from shared.problems import problem_responses

router = APIRouter(tags=["complaints"])


def changed(ctx: RequestContext, c: Complaint, response: Response) -> ComplaintRead:
    set_etag(response, c.version)
    return views.complaint(ctx, c)


@router.post(
    "/complaints/{complaint_id}/transitions",
    response_model=ComplaintRead,
    summary="Move a complaint through its lifecycle",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def transition_complaint(
    complaint_id: uuid.UUID,
    body: TransitionRequest,
    response: Response,
    ctx: Writer,
    if_match: IfMatch = None,
) -> ComplaintRead:
    """Change the state: received → acknowledged → investigating ⇄ waiting_on_customer →
    resolved → closed; `investigating` from resolved or closed reopens (within the window).

    Needs `complaints:write`. `If-Match` is optional here (checked when sent). Acknowledging is
    the first response; waiting on the customer pauses the SLA clock; resolving needs a
    `resolution`; closing needs the revisit's `revisit_outcome`. An invalid move is a 409
    naming `current_status` and the `allowed` moves. Publishes `complaint.status_changed` and
    `complaint.acknowledged` / `resolved` / `closed` / `reopened` where they apply.
    """
    return changed(ctx, await service.transition(ctx, complaint_id, body, if_match), response)


@router.get(
    "/complaints/{complaint_id}/transitions",
    response_model=list[TransitionRead],
    summary="History of a complaint's states",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_transitions(complaint_id: uuid.UUID, ctx: Reader) -> list[TransitionRead]:
    """Every state change, oldest first: who, when, with which note. Needs `complaints:read`
    (the notes need `pii:read`, else `[redacted]`)."""
    return [views.transition(ctx, t) for t in await service.history(ctx, complaint_id)]


@router.post(
    "/complaints/{complaint_id}/assignment",
    response_model=ComplaintRead,
    summary="Assign a complaint to an agent, or automatically within a team",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def assign_complaint(
    complaint_id: uuid.UUID, body: AssignmentRequest, response: Response, ctx: Writer
) -> ComplaintRead:
    """Manual (`assignee`) or automatic (`team`): the active agent of the team with the fewest
    open complaints gets it. Teams and agents are registered with `PUT /agents/{agent_id}`.
    Needs `complaints:write`; 409 `no-agent-available` when the team has no active agent.
    """
    return changed(ctx, await service.assign(ctx, complaint_id, body), response)


@router.post(
    "/complaints/{complaint_id}/escalations",
    response_model=ComplaintRead,
    summary="Escalate a complaint one level",
    responses=problem_responses(401, 403, 404, 422),
)
async def escalate_complaint(
    complaint_id: uuid.UUID, body: EscalationRequest, response: Response, ctx: Writer
) -> ComplaintRead:
    """Raise the escalation level by one (1 = team lead, 2+ = management) and publish
    `complaint.escalated` with reason `manual`. Needs `complaints:write`."""
    return changed(ctx, await service.escalate(ctx, complaint_id, body.note), response)


@router.post(
    "/complaints/{complaint_id}/rating",
    response_model=ComplaintRead,
    summary="Record the customer's rating of the resolution",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rate_complaint(
    complaint_id: uuid.UUID, body: RatingRequest, response: Response, ctx: Writer
) -> ComplaintRead:
    """The customer's satisfaction with the resolution, 1-5 with an optional comment.

    Only resolved or closed complaints (409 otherwise); a new rating replaces the previous one.
    Publishes `complaint.rated`. Needs `complaints:write`.
    """
    return changed(ctx, await service.rate(ctx, complaint_id, body), response)
