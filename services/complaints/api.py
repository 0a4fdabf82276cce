"""HTTP routes of the complaints service: parse, call the service layer, shape the response."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from services.complaints import privacy, service
from services.complaints import repository as repo
from services.complaints.models import (
    Action,
    Complaint,
    CustomerTier,
    ErasedCustomer,
    Note,
    Transition,
    idempotency_keys,
)
from services.complaints.schemas import (
    ActionCreate,
    ActionRead,
    ActionUpdate,
    AgentRead,
    AgentUpsert,
    AssignmentRequest,
    Category,
    ComplainantRead,
    ComplaintCreate,
    ComplaintExport,
    ComplaintRead,
    ComplaintUpdate,
    CustomerExport,
    ErasureStatus,
    EscalationRequest,
    NoteCreate,
    NoteRead,
    RatingRequest,
    Severity,
    SlaRead,
    SlaStatus,
    Status,
    TransitionRead,
    TransitionRequest,
)
from shared.auth import Principal, require
from shared.db import SessionDep
from shared.http import (
    Idempotency,
    IdempotencyKeyHeader,
    IfMatch,
    check_if_match,
    set_etag,
)
from shared.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    Page,
    decode_cursor,
    encode_cursor,
)
from shared.problems import problem_responses

router = APIRouter(tags=["complaints"])
agents_router = APIRouter(tags=["agents"])

Reader = Annotated[Principal, require("complaints:read")]
Writer = Annotated[Principal, require("complaints:write")]


def get_context(request: Request) -> service.Context:
    ctx = getattr(request.app.state, "complaints", None)
    if ctx is None:
        ctx = service.Context.of(request.app.state.settings, request.app.state.outbox)
        request.app.state.complaints = ctx
    return ctx


Ctx = Annotated[service.Context, Depends(get_context)]


def to_read(ctx: service.Context, c: Complaint, principal: Principal) -> ComplaintRead:
    """The complaint as `principal` may see it: personal data masked without `pii:read`."""
    now = service.utcnow()
    mask = privacy.mask
    active = (
        "first_response"
        if c.status == "received"
        else "resolution"
        if c.status in service.OPEN_STATUSES
        else None
    )
    return ComplaintRead(
        id=c.id,
        customer_id=c.customer_id,
        channel=c.channel,
        category=c.category,
        severity=c.severity,
        status=c.status,
        tier=c.tier,
        complainant=ComplainantRead(
            name=mask(principal, c.complainant_name),
            email=privacy.mask_email(principal, c.complainant_email),
            phone=privacy.mask_phone(principal, c.complainant_phone),
        )
        if c.erased_at is None
        else None,
        subject=mask(principal, c.subject),
        description=mask(principal, c.description),
        related_purchase_id=c.related_purchase_id,
        related_interaction_id=c.related_interaction_id,
        assignee=c.assignee,
        team=c.team,
        escalation_level=c.escalation_level,
        received_at=c.received_at,
        first_response_at=c.first_response_at,
        resolved_at=c.resolved_at,
        closed_at=c.closed_at,
        sla=SlaRead(
            status=c.sla_status,
            active_target=active,
            remaining_seconds=service.remaining_seconds(ctx, c, now),
            paused=c.paused_since is not None,
            paused_seconds=int(
                (c.paused_seconds or 0.0)
                + (ctx.clock.elapsed(c.paused_since, now) if c.paused_since else 0.0)
            ),
            first_response_target_s=c.first_response_target_s,
            resolution_target_s=c.resolution_target_s,
            first_response_due_at=c.first_response_due_at,
            resolution_due_at=c.resolution_due_at,
            first_response_breached=c.first_response_breached,
            resolution_breached=c.resolution_breached,
        ),
        root_cause_category=c.root_cause_category,
        root_cause=mask(principal, c.root_cause),
        resolution=mask(principal, c.resolution),
        rating=c.rating,
        rating_comment=mask(principal, c.rating_comment),
        revisit_due_at=c.revisit_due_at,
        revisit_outcome=c.revisit_outcome,
        reopen_count=c.reopen_count,
        allowed_transitions=service.allowed_moves(ctx, c, now),
        version=c.version,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def transition_read(t: Transition, principal: Principal) -> TransitionRead:
    read = TransitionRead.model_validate(t)
    return read.model_copy(update={"note": privacy.mask(principal, read.note)})


def note_read(n: Note, principal: Principal) -> NoteRead:
    read = NoteRead.model_validate(n)
    return read.model_copy(update={"body": privacy.mask(principal, read.body)})


def action_read(a: Action, principal: Principal) -> ActionRead:
    read = ActionRead.model_validate(a)
    return read.model_copy(update={"description": privacy.mask(principal, read.description)})


@router.post(
    "/complaints",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintRead,
    summary="Register a complaint",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_complaint(
    body: ComplaintCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Register a complaint received through any channel. Needs `complaints:write`.

    The SLA deadlines (first response and resolution) come from the severity × customer-tier
    matrix; the tier is the customer's latest ABC tier (unknown customers get the default tier).
    `critical` complaints are escalated to management at once (`complaint.escalated`). Give
    `team` to assign automatically to the team's least-loaded agent, or `assignee` directly.
    Publishes `complaint.received`. Send `Idempotency-Key` to make retries safe.
    """
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (replayed := await idem.replay(session, request)) is not None:
        return privacy.unseal_replay(replayed)
    c = await service.register(ctx, session, body, principal.subject)
    await privacy.changed(
        session,
        request,
        principal,
        "create",
        "complaint",
        c.id,
        c.customer_id,
        body.model_dump(exclude_none=True),
    )
    read = to_read(ctx, c, principal)
    headers = {"ETag": f'"{c.version}"', "Location": f"/complaints/{c.id}"}
    # Stored encrypted: the reply holds the complainant's details.
    await idem.remember(session, 201, privacy.seal_body(read.model_dump(mode="json")), headers)
    return JSONResponse(read.model_dump(mode="json"), status_code=201, headers=headers)


def _decode_queue_cursor(cursor: str | None) -> tuple[datetime | None, uuid.UUID] | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        due = datetime.fromisoformat(raw["d"]) if raw.get("d") else None
        return due, uuid.UUID(raw["id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidCursor("The cursor is not one this API issued") from exc


@router.get(
    "/complaints",
    response_model=Page[ComplaintRead],
    summary="Work queue: list and filter complaints, nearest deadline first",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_complaints(
    request: Request,
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
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
        status=list(status_ or []) or None,
        severity=list(severity or []) or None,
        category=list(category or []) or None,
        sla_status=list(sla_status or []) or None,
        assignee=assignee,
        team=team,
        customer_id=customer_id,
        escalated=escalated,
        revisit_due_before=service.utcnow() if revisit_due else None,
    )
    rows = await repo.queue(session, filters, _decode_queue_cursor(cursor), limit + 1)
    items = rows[:limit]
    await privacy.reads(
        session, request, principal, [("complaint", c, c.customer_id) for c in items]
    )
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        due = last.next_due_at.isoformat() if last.next_due_at else None
        next_cursor = encode_cursor({"d": due, "id": str(last.id)})
    return Page(items=[to_read(ctx, c, principal) for c in items], next_cursor=next_cursor)


@router.get(
    "/complaints/{complaint_id}",
    response_model=ComplaintRead,
    summary="Read a complaint with its SLA status and remaining time",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_complaint(
    complaint_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    principal: Reader,
) -> ComplaintRead:
    """One complaint: state, SLA status and remaining time, investigation and resolution.

    Needs `complaints:read` (complainant details also `pii:read`). The ETag is the version.
    """
    c = await service.get(session, complaint_id)
    await privacy.reads(session, request, principal, [("complaint", c, c.customer_id)])
    set_etag(response, c.version)
    return to_read(ctx, c, principal)


@router.patch(
    "/complaints/{complaint_id}",
    response_model=ComplaintRead,
    summary="Update investigation and resolution details",
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_complaint(
    complaint_id: uuid.UUID,
    body: ComplaintUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
    if_match: IfMatch = None,
) -> ComplaintRead:
    """Set root cause (categorised), resolution text, category, severity or wording.

    Needs `complaints:write` and `If-Match` with the ETag of your last read. A severity change
    re-computes the SLA deadlines.
    """
    c = await service.get(session, complaint_id, lock=True)
    check_if_match(if_match, c.version)
    await service.update(ctx, session, c, body)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "complaint",
        c.id,
        c.customer_id,
        body.model_dump(exclude_unset=True),
    )
    set_etag(response, c.version)
    return to_read(ctx, c, principal)


@router.post(
    "/complaints/{complaint_id}/transitions",
    response_model=ComplaintRead,
    summary="Move a complaint through its lifecycle",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def transition_complaint(
    complaint_id: uuid.UUID,
    body: TransitionRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
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
    c = await service.get(session, complaint_id, lock=True)
    if if_match is not None:
        check_if_match(if_match, c.version)
    await service.transition(ctx, session, c, body, principal.subject)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "complaint",
        c.id,
        c.customer_id,
        ["status", *body.model_dump(exclude_none=True)],
    )
    set_etag(response, c.version)
    return to_read(ctx, c, principal)


@router.get(
    "/complaints/{complaint_id}/transitions",
    response_model=list[TransitionRead],
    summary="History of a complaint's states",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_transitions(
    complaint_id: uuid.UUID, request: Request, session: SessionDep, principal: Reader
) -> list[TransitionRead]:
    """Every state change, oldest first: who, when, with which note. Needs `complaints:read`
    (the notes need `pii:read`, else `[redacted]`)."""
    c = await service.get(session, complaint_id)
    rows = await repo.transitions(session, complaint_id)
    await privacy.reads(
        session, request, principal, [("complaint_transition", t, c.customer_id) for t in rows]
    )
    return [transition_read(t, principal) for t in rows]


@router.post(
    "/complaints/{complaint_id}/assignment",
    response_model=ComplaintRead,
    summary="Assign a complaint to an agent, or automatically within a team",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def assign_complaint(
    complaint_id: uuid.UUID,
    body: AssignmentRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
) -> ComplaintRead:
    """Manual (`assignee`) or automatic (`team`): the active agent of the team with the fewest
    open complaints gets it. Teams and agents are registered with `PUT /agents/{agent_id}`.
    Needs `complaints:write`; 409 `no-agent-available` when the team has no active agent.
    """
    c = await service.get(session, complaint_id, lock=True)
    await service.assign(session, c, body)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "complaint",
        c.id,
        c.customer_id,
        ["assignee", "team"],
    )
    set_etag(response, c.version)
    return to_read(ctx, c, principal)


@router.post(
    "/complaints/{complaint_id}/escalations",
    response_model=ComplaintRead,
    summary="Escalate a complaint one level",
    responses=problem_responses(401, 403, 404, 422),
)
async def escalate_complaint(
    complaint_id: uuid.UUID,
    body: EscalationRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
) -> ComplaintRead:
    """Raise the escalation level by one (1 = team lead, 2+ = management) and publish
    `complaint.escalated` with reason `manual`. Needs `complaints:write`."""
    c = await service.get(session, complaint_id, lock=True)
    await service.escalate(ctx, session, c, body.note, principal.subject)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "complaint",
        c.id,
        c.customer_id,
        ["escalation_level", *(["note"] if body.note else [])],
    )
    set_etag(response, c.version)
    return to_read(ctx, c, principal)


@router.post(
    "/complaints/{complaint_id}/rating",
    response_model=ComplaintRead,
    summary="Record the customer's rating of the resolution",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rate_complaint(
    complaint_id: uuid.UUID,
    body: RatingRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    ctx: Ctx,
    principal: Writer,
) -> ComplaintRead:
    """The customer's satisfaction with the resolution, 1-5 with an optional comment.

    Only resolved or closed complaints (409 otherwise); a new rating replaces the previous one.
    Publishes `complaint.rated`. Needs `complaints:write`.
    """
    c = await service.get(session, complaint_id, lock=True)
    await service.rate(ctx, session, c, body)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "complaint",
        c.id,
        c.customer_id,
        body.model_dump(exclude_none=True),
    )
    set_etag(response, c.version)
    return to_read(ctx, c, principal)


@router.post(
    "/complaints/{complaint_id}/notes",
    response_model=NoteRead,
    status_code=201,
    summary="Add an investigation note",
    responses=problem_responses(401, 403, 404, 422),
)
async def add_note(
    complaint_id: uuid.UUID,
    body: NoteCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
) -> NoteRead:
    """A note of the investigation, authored by the caller. Needs `complaints:write`."""
    c = await service.get(session, complaint_id)
    note = await service.add_note(session, c, body.body, principal.subject)
    await privacy.changed(
        session, request, principal, "create", "complaint_note", note.id, c.customer_id, ["body"]
    )
    return note_read(note, principal)


@router.get(
    "/complaints/{complaint_id}/notes",
    response_model=list[NoteRead],
    summary="Investigation notes, oldest first",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_notes(
    complaint_id: uuid.UUID, request: Request, session: SessionDep, principal: Reader
) -> list[NoteRead]:
    """Every note of the complaint, oldest first. Needs `complaints:read` (the text needs
    `pii:read`, else `[redacted]`)."""
    c = await service.get(session, complaint_id)
    rows = await repo.notes(session, complaint_id)
    await privacy.reads(
        session, request, principal, [("complaint_note", n, c.customer_id) for n in rows]
    )
    return [note_read(n, principal) for n in rows]


@router.post(
    "/complaints/{complaint_id}/actions",
    response_model=ActionRead,
    status_code=201,
    summary="Add a corrective or preventive action",
    responses=problem_responses(401, 403, 404, 422),
)
async def add_action(
    complaint_id: uuid.UUID,
    body: ActionCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
) -> ActionRead:
    """A corrective (fix this case) or preventive (stop it recurring) action with an owner,
    a due date and a status. Needs `complaints:write`."""
    c = await service.get(session, complaint_id)
    action = await service.add_action(session, c, body)
    await privacy.changed(
        session,
        request,
        principal,
        "create",
        "complaint_action",
        action.id,
        c.customer_id,
        body.model_dump(exclude_none=True),
    )
    return action_read(action, principal)


@router.get(
    "/complaints/{complaint_id}/actions",
    response_model=list[ActionRead],
    summary="Corrective and preventive actions of a complaint",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_actions(
    complaint_id: uuid.UUID, request: Request, session: SessionDep, principal: Reader
) -> list[ActionRead]:
    """Every action of the complaint, oldest first. Needs `complaints:read` (descriptions need
    `pii:read`, else `[redacted]`)."""
    c = await service.get(session, complaint_id)
    rows = await repo.actions(session, complaint_id)
    await privacy.reads(
        session, request, principal, [("complaint_action", a, c.customer_id) for a in rows]
    )
    return [action_read(a, principal) for a in rows]


@router.patch(
    "/complaints/{complaint_id}/actions/{action_id}",
    response_model=ActionRead,
    summary="Update an action (status, owner, due date, description)",
    responses=problem_responses(401, 403, 404, 422),
)
async def update_action(
    complaint_id: uuid.UUID,
    action_id: uuid.UUID,
    body: ActionUpdate,
    request: Request,
    session: SessionDep,
    principal: Writer,
) -> ActionRead:
    """Change an action; send only the fields to change. Needs `complaints:write`."""
    action = await service.update_action(session, complaint_id, action_id, body)
    c = await service.get(session, complaint_id)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "complaint_action",
        action.id,
        c.customer_id,
        body.model_dump(exclude_unset=True),
    )
    return action_read(action, principal)


@agents_router.put(
    "/agents/{agent_id}",
    response_model=AgentRead,
    summary="Register or update an agent and their team",
    responses=problem_responses(401, 403, 422),
)
async def put_agent(
    agent_id: Annotated[str, Path(min_length=1, max_length=200, examples=["agent-7"])],
    body: AgentUpsert,
    request: Request,
    session: SessionDep,
    principal: Writer,
) -> AgentRead:
    """Agents (by their token subject) belong to one team; automatic assignment picks the
    active agent of a team with the fewest open complaints. Needs `complaints:write`."""
    await repo.upsert_agent(session, agent_id, body.team, body.active)
    await privacy.changed(
        session, request, principal, "update", "agent", agent_id, None, ["team", "active"]
    )
    rows = await repo.agents_with_load(session, body.team, service.OPEN_STATUSES)
    row = next(r for r in rows if r.id == agent_id)
    return AgentRead(
        id=row.id, team=row.team, active=row.active, open_complaints=row.open_complaints
    )


@agents_router.get(
    "/agents",
    response_model=list[AgentRead],
    summary="Agents with their open complaint load",
    responses=problem_responses(401, 403, 422),
)
async def list_agents(
    session: SessionDep, _: Reader, team: Annotated[str | None, Query(max_length=100)] = None
) -> list[AgentRead]:
    """Every agent (optionally of one team) and how many open complaints each has.
    Needs `complaints:read`."""
    rows = await repo.agents_with_load(session, team, service.OPEN_STATUSES)
    return [
        AgentRead(id=r.id, team=r.team, active=r.active, open_complaints=r.open_complaints)
        for r in rows
    ]


# -- GDPR --------------------------------------------------------------------------------------

gdpr_router = APIRouter(prefix="/customers/{customer_id}", tags=["gdpr"])


@gdpr_router.get(
    "/export",
    response_model=CustomerExport,
    summary="Export everything held about a customer",
    responses=problem_responses(401, 403, 422),
)
async def export_customer(
    customer_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    ctx: Ctx,
    principal: Annotated[Principal, require("customers:read")],
    _: Annotated[Principal, require("pii:read")],
) -> CustomerExport:
    """Every complaint of the customer with its state history, notes and actions, decrypted
    (GDPR right of access). Needs `customers:read` and `pii:read`; each export is written to
    the audit log (`export`). Complaints of duplicates merged into the customer are included
    (they were moved to it). An unknown customer gets an empty list, not a 404.
    """
    complaints = list(
        (
            await session.scalars(
                sa.select(Complaint)
                .where(Complaint.customer_id == customer_id)
                .order_by(Complaint.received_at, Complaint.id)
            )
        ).all()
    )
    exported = [
        ComplaintExport(
            complaint=to_read(ctx, c, principal),
            transitions=[
                transition_read(t, principal) for t in await repo.transitions(session, c.id)
            ],
            notes=[note_read(n, principal) for n in await repo.notes(session, c.id)],
            actions=[action_read(a, principal) for a in await repo.actions(session, c.id)],
        )
        for c in complaints
    ]
    erased_at = await session.scalar(
        sa.select(ErasedCustomer.erased_at).where(ErasedCustomer.customer_id == customer_id)
    )
    tier = await session.scalar(
        sa.select(CustomerTier.tier).where(CustomerTier.customer_id == customer_id)
    )
    await privacy.changed(
        session,
        request,
        principal,
        "export",
        "customer",
        customer_id,
        customer_id,
        ["complaints", "complaint_transitions", "complaint_notes", "complaint_actions"],
    )
    return CustomerExport(
        customer_id=customer_id,
        exported_at=service.utcnow(),
        erased_at=erased_at,
        tier=tier,
        complaints=exported,
    )


@gdpr_router.get(
    "/erasure",
    response_model=ErasureStatus,
    summary="Has this service erased the customer?",
    responses=problem_responses(401, 403, 422),
)
async def erasure_status(
    customer_id: uuid.UUID,
    session: SessionDep,
    _: Annotated[Principal, require("customers:read")],
) -> ErasureStatus:
    """Whether `customer.erased` for this customer was processed here (needs `customers:read`).

    `erased` turns true once the complainant's details and every free text of the customer's
    complaints (notes, transition notes, actions, resolution, rating comment) were removed;
    categories, timings, SLA facts and ratings stay for the aggregates. Profiles' erasure
    report asks every service this.
    """
    erased_at = await session.scalar(
        sa.select(ErasedCustomer.erased_at).where(ErasedCustomer.customer_id == customer_id)
    )
    return ErasureStatus(erased=erased_at is not None, erased_at=erased_at)
