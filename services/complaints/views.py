"""Read models of the complaints service, as the caller may see them (masked without
`pii:read`, through the service's privacy declaration)."""

from __future__ import annotations

from services.complaints import service
from services.complaints.models import Action, Complaint, Note, Transition
from services.complaints.schemas import (
    ActionRead,
    AgentRead,
    ComplainantRead,
    ComplaintRead,
    NoteRead,
    SlaRead,
    TransitionRead,
)
from shared.context import RequestContext

# Fields a complaint reads as stored (the personal ones masked); the rest are computed.
STORED = [name for name in ComplaintRead.model_fields if hasattr(Complaint, name)]


def complaint(ctx: RequestContext, c: Complaint) -> ComplaintRead:
    now = ctx.now()
    pii = ctx.mask("complaint", {f: getattr(c, f) for f in ctx.pii.fields_of("complaint")})
    active = (
        "first_response"
        if c.status == "received"
        else "resolution"
        if c.status in service.OPEN_STATUSES
        else None
    )
    paused_now = service.sla_clock(ctx).elapsed(c.paused_since, now) if c.paused_since else 0.0
    complainant = ComplainantRead(
        name=pii["complainant_name"], email=pii["complainant_email"], phone=pii["complainant_phone"]
    )
    return ComplaintRead(
        **{name: pii.get(name, getattr(c, name)) for name in STORED},
        complainant=complainant if c.erased_at is None else None,
        sla=SlaRead(
            status=c.sla_status,
            active_target=active,
            remaining_seconds=service.remaining_seconds(ctx, c, now),
            paused=c.paused_since is not None,
            paused_seconds=int((c.paused_seconds or 0.0) + paused_now),
            first_response_target_s=c.first_response_target_s,
            resolution_target_s=c.resolution_target_s,
            first_response_due_at=c.first_response_due_at,
            resolution_due_at=c.resolution_due_at,
            first_response_breached=c.first_response_breached,
            resolution_breached=c.resolution_breached,
        ),
        allowed_transitions=service.allowed_moves(ctx, c, now),
    )


def transition(ctx: RequestContext, t: Transition) -> TransitionRead:
    read: TransitionRead = ctx.mask("complaint_transition", TransitionRead.model_validate(t))
    return read


def note(ctx: RequestContext, n: Note) -> NoteRead:
    read: NoteRead = ctx.mask("complaint_note", NoteRead.model_validate(n))
    return read


def action(ctx: RequestContext, a: Action) -> ActionRead:
    read: ActionRead = ctx.mask("complaint_action", ActionRead.model_validate(a))
    return read


def agent(row: object) -> AgentRead:
    return AgentRead.model_validate(row, from_attributes=True)
