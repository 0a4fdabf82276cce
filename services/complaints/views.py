"""Read models of the service desk, as the caller may see them (masked without `pii:read`,
through the service's privacy declaration)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from services.complaints import service
from services.complaints.desk import OPEN_STATUSES
from services.complaints.models import Action, CannedResponse, Case, Note, Transition
from services.complaints.schemas import (
    ActionRead,
    AgentRead,
    CannedResponseRead,
    CaseRead,
    CaseSlaRead,
    ClaimRead,
    ComplainantRead,
    ComplaintRead,
    NoteRead,
    SlaRead,
    TransitionRead,
)
from shared.context import RequestContext

FOUR_PLACES = Decimal("0.0001")
# Fields a case reads as stored (the personal ones masked); the rest are computed.
STORED = [name for name in ComplaintRead.model_fields if hasattr(Case, name)]
CASE_STORED = [name for name in CaseRead.model_fields if hasattr(Case, name) and name != "sla"]


def _sla(ctx: RequestContext, c: Case, now: datetime) -> dict[str, Any]:
    active = (
        "first_response"
        if c.status == "received"
        else "resolution"
        if c.status in OPEN_STATUSES
        else None
    )
    clock = service.sla_clock(ctx, c)
    paused_now = clock.elapsed(c.paused_since, now) if c.paused_since else 0.0
    return {
        "status": c.sla_status,
        "active_target": active,
        "remaining_seconds": service.remaining_seconds(ctx, c, now),
        "paused": c.paused_since is not None,
        "paused_seconds": int((c.paused_seconds or 0.0) + paused_now),
        "first_response_target_s": c.first_response_target_s,
        "resolution_target_s": c.resolution_target_s,
        "first_response_due_at": c.first_response_due_at,
        "resolution_due_at": c.resolution_due_at,
        "first_response_breached": c.first_response_breached,
        "resolution_breached": c.resolution_breached,
    }


def _masked(ctx: RequestContext, c: Case) -> dict[str, Any]:
    return dict(ctx.mask("complaint", {f: getattr(c, f) for f in ctx.pii.fields_of("complaint")}))


def _contact(pii: dict[str, Any], c: Case) -> ComplainantRead | None:
    if c.erased_at is not None:
        return None
    return ComplainantRead(
        name=pii["complainant_name"], email=pii["complainant_email"], phone=pii["complainant_phone"]
    )


def complaint(ctx: RequestContext, c: Case) -> ComplaintRead:
    """A complaint-type case as `/complaints` has always answered it."""
    now = ctx.now()
    pii = _masked(ctx, c)
    return ComplaintRead(
        **{name: pii.get(name, getattr(c, name)) for name in STORED},
        complainant=_contact(pii, c),
        sla=SlaRead(**_sla(ctx, c, now)),
        allowed_transitions=service.allowed_moves(ctx, c, now),
    )


def case(ctx: RequestContext, c: Case) -> CaseRead:
    now = ctx.now()
    pii = _masked(ctx, c)
    claim = None
    if c.type == "claim" and c.amount_claimed is not None and c.delivered_at is not None:
        claim = ClaimRead(
            kind=c.claim_kind,
            purchase_id=c.related_purchase_id,
            amount=c.amount_claimed.quantize(FOUR_PLACES),  # as stored, however given
            currency=c.currency or "",
            delivered_at=c.delivered_at,
            return_window_days=c.return_window_days or 0,
            window_overridden_by=c.window_overridden_by,
        )
    return CaseRead(
        **{name: pii.get(name, getattr(c, name)) for name in CASE_STORED},
        contact=_contact(pii, c),
        claim=claim,
        sla=CaseSlaRead(
            **_sla(ctx, c, now),
            policy=c.sla_policy,
            pause_states=list(c.pause_states),
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


def response(r: CannedResponse) -> CannedResponseRead:
    return CannedResponseRead.model_validate(r)
