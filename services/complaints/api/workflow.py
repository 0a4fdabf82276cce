"""A case's workflow: state transitions, assignment, escalation and the customer's rating,
mounted under `/cases/{case_id}` and (complaints only) `/complaints/{complaint_id}`.

Each answers the case as it is after the change, with its new ETag.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from services.complaints import service, views
from services.complaints.api.common import Reader, Resource, Writer
from services.complaints.schemas import (
    AssignmentRequest,
    CaseTransitionRequest,
    EscalationRequest,
    RatingRequest,
    TransitionRead,
)
from shared.http import IfMatch, set_etag
from shared.problems import problem_responses

LIFECYCLES = {
    "case": "Suggestions: received → acknowledged → accepted | declined → closed. Every other "
    "type: received → acknowledged → investigating ⇄ waiting_on_customer → resolved → closed; "
    "`investigating` from resolved or closed reopens (within the window).",
    "complaint": "received → acknowledged → investigating ⇄ waiting_on_customer → resolved → "
    "closed; `investigating` from resolved or closed reopens (within the window).",
}


def router(r: Resource) -> APIRouter:
    api = APIRouter(tags=[r.tag])
    Id = Annotated[uuid.UUID, Path(alias=r.param)]
    base = f"{r.prefix}/{{{r.param}}}"
    events = "case.*" if r.kind is None else "`complaint.*` (and `case.*`)"

    def changed(ctx: Any, c: Any, response: Response) -> Any:
        set_etag(response, c.version)
        return r.view(ctx, c)

    @api.post(
        f"{base}/transitions",
        response_model=r.read_model,
        summary=f"Move a {r.noun} through its lifecycle",
        responses=problem_responses(401, 403, 404, 409, 412, 422),
        description=f"""Change the state. {LIFECYCLES[r.noun]}

Needs `complaints:write`. `If-Match` is optional here (checked when sent). Acknowledging is the
first response; the policy's pause states (waiting on the customer) stop the SLA clock;
resolving needs a `resolution`; closing needs the revisit's `revisit_outcome` (for the types
that are revisited, unless the revisit follow-up recorded it). An invalid move is a 409 naming
`current_status` and the `allowed` moves. Publishes {events} status changes and the
acknowledgement, outcome (with the notice's outcome summary), closing and reopening.""",
    )
    async def transition(
        case_id: Id,
        body: r.transition_model,  # type: ignore[name-defined]
        response: Response,
        ctx: Writer,
        if_match: IfMatch = None,
    ) -> Any:
        req = CaseTransitionRequest.model_validate(body.model_dump())
        c = await service.transition(ctx, case_id, req, if_match, r.kind)
        return changed(ctx, c, response)

    @api.get(
        f"{base}/transitions",
        response_model=list[TransitionRead],
        summary=f"History of a {r.noun}'s states",
        responses=problem_responses(401, 403, 404, 422),
        description="Every state change, oldest first: who, when, with which note. Needs "
        "`complaints:read` (the notes need `pii:read`, else `[redacted]`).",
    )
    async def list_transitions(case_id: Id, ctx: Reader) -> list[TransitionRead]:
        return [views.transition(ctx, t) for t in await service.history(ctx, case_id, r.kind)]

    @api.post(
        f"{base}/assignment",
        response_model=r.read_model,
        summary=f"Assign a {r.noun} to an agent, or automatically within a team",
        responses=problem_responses(401, 403, 404, 409, 422),
        description="Manual (`assignee`) or automatic (`team`): the active agent of the team "
        "with the fewest open cases gets it; either way it leaves the management queue. Teams "
        "and agents are registered with `PUT /teams/{team}` or `PUT /agents/{agent_id}`. Needs "
        "`complaints:write`; 409 `no-agent-available` when the team has no active agent.",
    )
    async def assign(case_id: Id, body: AssignmentRequest, response: Response, ctx: Writer) -> Any:
        return changed(ctx, await service.assign(ctx, case_id, body, r.kind), response)

    @api.post(
        f"{base}/escalations",
        response_model=r.read_model,
        summary=f"Escalate a {r.noun} one level",
        responses=problem_responses(401, 403, 404, 422),
        description="Raise the escalation level by one and move the work: level 1 to the "
        "team's lead, level 2 and up to the management queue (`GET /queues/management`). "
        f"Publishes {events} escalation with reason `manual`. Needs `complaints:write`.",
    )
    async def escalate(
        case_id: Id, body: EscalationRequest, response: Response, ctx: Writer
    ) -> Any:
        return changed(ctx, await service.escalate(ctx, case_id, body.note, r.kind), response)

    @api.post(
        f"{base}/rating",
        response_model=r.read_model,
        summary="Record the customer's rating of the outcome",
        responses=problem_responses(401, 403, 404, 409, 422),
        description="The customer's satisfaction with the outcome, 1-5 with an optional "
        "comment. Only cases with an outcome (resolved, accepted, declined) or closed (409 "
        f"otherwise); a new rating replaces the previous one. Publishes {events} rating. "
        "Needs `complaints:write`.",
    )
    async def rate(case_id: Id, body: RatingRequest, response: Response, ctx: Writer) -> Any:
        return changed(ctx, await service.rate(ctx, case_id, body, r.kind), response)

    return api
