"""HTTP routes of the interactions service: parse, call the service layer, map to responses."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel

from services.interactions import privacy, schemas, service
from services.interactions import repository as repo
from services.interactions.models import (
    CustomerState,
    Followup,
    Interaction,
    Purchase,
    Refund,
    Survey,
    SurveyInvitation,
    idempotency_keys,
)
from services.interactions.service import Ctx
from shared.auth import Principal, require
from shared.db import SessionDep
from shared.http import (
    Idempotency,
    IdempotencyKeyHeader,
    IfMatch,
    check_if_match,
    etag_of,
    set_etag,
)
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from shared.problems import Unprocessable, problem_responses

REDACTED = privacy.REDACTED
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
]
CustomerFilter = Annotated[uuid.UUID | None, Query(description="Only this customer's records.")]
Since = Annotated[
    AwareDatetime | None, Query(alias="from", description="From this time (inclusive).")
]
Until = Annotated[AwareDatetime | None, Query(alias="to", description="Before this time.")]

ETAG_HEADER = {"ETag": {"description": "The resource's version; send it as If-Match to update."}}
WRITE_ERRORS = problem_responses(401, 403, 409, 422)
UPDATE_ERRORS = problem_responses(401, 403, 404, 409, 412, 422, 428)
READ_ERRORS = problem_responses(401, 403, 404)
LIST_ERRORS = problem_responses(400, 401, 403, 422)


def ctx_of(request: Request, session: Any) -> Ctx:
    return Ctx(session, request.app.state.outbox, request.app.state.settings)


_mask = privacy.mask


def interaction_read(i: Interaction, principal: Principal) -> schemas.InteractionRead:
    read = schemas.InteractionRead.model_validate(i)
    return read.model_copy(
        update={
            "contact_person": _mask(principal, read.contact_person),
            "subject": _mask(principal, read.subject),
            "summary": _mask(principal, read.summary),
        }
    )


def followup_read(
    f: Followup, principal: Principal, now: datetime | None = None
) -> schemas.FollowupRead:
    now = now or service.utcnow()
    return schemas.FollowupRead(
        id=f.id,
        customer_id=f.customer_id,
        kind=f.kind,
        due_at=f.due_at,
        assignee_id=f.assignee_id,
        status=f.status,
        note=_mask(principal, f.note),
        origin=f.origin,
        interaction_id=f.interaction_id,
        completed_at=f.completed_at,
        overdue=f.status == "open" and f.due_at < now,
        version=f.version,
        created_at=f.created_at,
        updated_at=f.updated_at,
    )


def purchase_read(p: Purchase) -> schemas.PurchaseRead:
    return schemas.PurchaseRead(
        id=p.id,
        customer_id=p.customer_id,
        external_ref=p.external_ref,
        occurred_at=p.occurred_at,
        amount=p.amount,
        cost=p.cost,
        margin=p.margin,
        currency=p.currency,
        status=p.status,
        items=[schemas.PurchaseItemRead.model_validate(item) for item in p.items],
        refunded_amount=p.refunded_amount,
        refunded_margin=p.refunded_margin,
        refundable_amount=p.amount - p.refunded_amount,
        version=p.version,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def survey_read(s: Survey, principal: Principal) -> schemas.SurveyRead:
    read = schemas.SurveyRead.model_validate(s)
    return read.model_copy(update={"comment": _mask(principal, read.comment)})


async def idempotent(
    request: Request,
    session: Any,
    principal: Principal,
    key: str | None,
    create: Callable[[], Awaitable[tuple[int, BaseModel, dict[str, str]]]],
) -> JSONResponse:
    """Run a create once per Idempotency-Key; retries get the stored first response."""
    idem = Idempotency(idempotency_keys, key, principal.subject)
    replayed = await idem.replay(session, request)
    if replayed is not None:
        return privacy.unseal_replay(replayed)
    status, model, headers = await create()
    body = model.model_dump(mode="json")
    # Stored encrypted: the body can hold personal text.
    await idem.remember(session, status, privacy.seal_body(body), headers)
    return JSONResponse(body, status_code=status, headers=headers)


# -- interactions -------------------------------------------------------------------------------

interactions = APIRouter(prefix="/interactions", tags=["interactions"])


@interactions.post(
    "",
    status_code=201,
    summary="Log an interaction",
    response_model=schemas.InteractionRead,
    responses={201: {"headers": ETAG_HEADER}, **WRITE_ERRORS},
)
async def log_interaction(
    request: Request,
    session: SessionDep,
    body: schemas.InteractionCreate,
    principal: Annotated[Principal, require("interactions:write")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record a contact with a customer (needs `interactions:write`).

    The customer does not have to be known to this service yet. Answered contacts (any outcome
    except `no_answer`) move the customer's last contact and so the next planned revisit.
    Publishes `interaction.logged`. Send `Idempotency-Key` to make retries safe. A customer
    whose personal data was erased gets no new records (409).
    """

    async def create() -> tuple[int, BaseModel, dict[str, str]]:
        interaction = await service.log_interaction(ctx_of(request, session), body)
        await privacy.changed(
            session,
            request,
            principal,
            "create",
            "interaction",
            interaction.id,
            interaction.customer_id,
            body.model_dump(exclude_none=True),
        )
        headers = {
            "ETag": etag_of(interaction.version),
            "Location": f"/interactions/{interaction.id}",
        }
        return 201, interaction_read(interaction, principal), headers

    return await idempotent(request, session, principal, idempotency_key, create)


@interactions.get(
    "/{interaction_id}",
    summary="Get an interaction",
    response_model=schemas.InteractionRead,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
)
async def get_interaction(
    interaction_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require("interactions:read")],
) -> schemas.InteractionRead:
    """One interaction (needs `interactions:read`; names and free text need `pii:read`)."""
    interaction = await service.get_interaction(ctx_of(request, session), interaction_id)
    await privacy.reads(session, request, principal, [("interaction", interaction)])
    set_etag(response, interaction.version)
    return interaction_read(interaction, principal)


@interactions.get(
    "",
    summary="List interactions",
    response_model=Page[schemas.InteractionRead],
    responses=LIST_ERRORS,
)
async def list_interactions(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("interactions:read")],
    customer_id: CustomerFilter = None,
    channel: Annotated[
        list[schemas.Channel] | None, Query(description="Any of these channels.")
    ] = None,
    direction: schemas.Direction | None = None,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[str | None, Query(max_length=50)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.InteractionRead]:
    """Interactions, newest first, filtered (needs `interactions:read`)."""
    stmt = sa.select(Interaction)
    if customer_id is not None:
        stmt = stmt.where(Interaction.customer_id == customer_id)
    if channel:
        stmt = stmt.where(Interaction.channel.in_(channel))
    if direction is not None:
        stmt = stmt.where(Interaction.direction == direction)
    if agent_id is not None:
        stmt = stmt.where(Interaction.agent_id == agent_id)
    if outcome is not None:
        stmt = stmt.where(Interaction.outcome == outcome)
    if since is not None:
        stmt = stmt.where(Interaction.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(Interaction.occurred_at < until)
    rows, next_cursor = await repo.keyset_page(
        session, stmt, Interaction.occurred_at, Interaction.id, cursor, limit
    )
    await privacy.reads(session, request, principal, [("interaction", i) for i in rows])
    return Page(items=[interaction_read(i, principal) for i in rows], next_cursor=next_cursor)


@interactions.patch(
    "/{interaction_id}",
    summary="Correct an interaction",
    response_model=schemas.InteractionRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def correct_interaction(
    interaction_id: uuid.UUID,
    body: schemas.InteractionUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require("interactions:write")],
    if_match: IfMatch = None,
) -> schemas.InteractionRead:
    """Correct fields of a logged interaction (needs `interactions:write`).

    Send `If-Match` with the ETag of your last read: without it 428, if it changed since 412.
    Only the fields sent change. Corrections are not re-published as events.
    """
    ctx = ctx_of(request, session)
    interaction = await service.get_interaction(ctx, interaction_id, lock=True)
    check_if_match(if_match, interaction.version)
    interaction = await service.correct_interaction(ctx, interaction, body)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "interaction",
        interaction.id,
        interaction.customer_id,
        body.model_dump(exclude_unset=True),
    )
    set_etag(response, interaction.version)
    return interaction_read(interaction, principal)


# -- follow-ups ---------------------------------------------------------------------------------

followups = APIRouter(tags=["follow-ups"])


@followups.post(
    "/followups",
    status_code=201,
    summary="Schedule a follow-up",
    response_model=schemas.FollowupRead,
    responses={201: {"headers": ETAG_HEADER}, **WRITE_ERRORS},
)
async def schedule_followup(
    request: Request,
    session: SessionDep,
    body: schemas.FollowupCreate,
    principal: Annotated[Principal, require("followups:write")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Plan a contact with a customer by `due_at` (needs `followups:write`).

    Publishes `followup.scheduled`; once past due and still open, `followup.overdue` is
    published once. Revisit and care follow-ups are also created by the service itself.
    """

    async def create() -> tuple[int, BaseModel, dict[str, str]]:
        followup = await service.schedule_followup(ctx_of(request, session), body)
        await privacy.changed(
            session,
            request,
            principal,
            "create",
            "followup",
            followup.id,
            followup.customer_id,
            body.model_dump(exclude_none=True),
        )
        headers = {"ETag": etag_of(followup.version), "Location": f"/followups/{followup.id}"}
        return 201, followup_read(followup, principal), headers

    return await idempotent(request, session, principal, idempotency_key, create)


@followups.get(
    "/followups/{followup_id}",
    summary="Get a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
)
async def get_followup(
    followup_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require("followups:read")],
) -> schemas.FollowupRead:
    """One follow-up (needs `followups:read`)."""
    followup = await service.get_followup(ctx_of(request, session), followup_id)
    await privacy.reads(session, request, principal, [("followup", followup)])
    set_etag(response, followup.version)
    return followup_read(followup, principal)


@followups.get(
    "/followups",
    summary="List follow-ups",
    response_model=Page[schemas.FollowupRead],
    responses=LIST_ERRORS,
)
async def list_followups(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("followups:read")],
    customer_id: CustomerFilter = None,
    assignee_id: Annotated[str | None, Query(max_length=200)] = None,
    status: schemas.FollowupStatus | None = None,
    kind: schemas.FollowupKind | None = None,
    overdue: Annotated[bool | None, Query(description="Only open ones past due (or not).")] = None,
    due_from: AwareDatetime | None = None,
    due_to: AwareDatetime | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.FollowupRead]:
    """Follow-ups ordered by due time, earliest first (needs `followups:read`)."""
    now = service.utcnow()
    stmt = sa.select(Followup)
    if customer_id is not None:
        stmt = stmt.where(Followup.customer_id == customer_id)
    if assignee_id is not None:
        stmt = stmt.where(Followup.assignee_id == assignee_id)
    if status is not None:
        stmt = stmt.where(Followup.status == status)
    if kind is not None:
        stmt = stmt.where(Followup.kind == kind)
    if overdue is True:
        stmt = stmt.where(Followup.status == "open", Followup.due_at < now)
    elif overdue is False:
        stmt = stmt.where(sa.or_(Followup.status != "open", Followup.due_at >= now))
    if due_from is not None:
        stmt = stmt.where(Followup.due_at >= due_from)
    if due_to is not None:
        stmt = stmt.where(Followup.due_at < due_to)
    rows, next_cursor = await repo.keyset_page(
        session, stmt, Followup.due_at, Followup.id, cursor, limit, descending=False
    )
    await privacy.reads(session, request, principal, [("followup", f) for f in rows])
    return Page(items=[followup_read(f, principal, now) for f in rows], next_cursor=next_cursor)


@followups.patch(
    "/followups/{followup_id}",
    summary="Reschedule or reassign a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def update_followup(
    followup_id: uuid.UUID,
    body: schemas.FollowupUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require("followups:write")],
    if_match: IfMatch = None,
) -> schemas.FollowupRead:
    """Change the due time, assignee or note of an open follow-up (needs `followups:write`).

    Needs `If-Match` (428 without, 412 if stale). A new due time or assignee publishes
    `followup.scheduled` again, and the follow-up can go overdue again.
    """
    ctx = ctx_of(request, session)
    followup = await service.get_followup(ctx, followup_id, lock=True)
    check_if_match(if_match, followup.version)
    followup = await service.update_followup(ctx, followup, body)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "followup",
        followup.id,
        followup.customer_id,
        body.model_dump(exclude_unset=True),
    )
    set_etag(response, followup.version)
    return followup_read(followup, principal)


@followups.post(
    "/followups/{followup_id}/complete",
    summary="Complete a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def complete_followup(
    followup_id: uuid.UUID,
    body: schemas.FollowupComplete,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require("followups:write")],
    if_match: IfMatch = None,
) -> schemas.FollowupRead:
    """Mark an open follow-up done, linking the interaction that did it (`followups:write`).

    Publishes `followup.completed`. `If-Match` is optional here; when sent it must match.
    Completing a follow-up that is not open is a 409.
    """
    ctx = ctx_of(request, session)
    followup = await service.get_followup(ctx, followup_id, lock=True)
    if if_match is not None:
        check_if_match(if_match, followup.version)
    followup = await service.complete_followup(ctx, followup, body)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "followup",
        followup.id,
        followup.customer_id,
        ["status", *body.model_dump(exclude_unset=True)],
    )
    set_etag(response, followup.version)
    return followup_read(followup, principal)


@followups.post(
    "/followups/{followup_id}/cancel",
    summary="Cancel a follow-up",
    response_model=schemas.FollowupRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def cancel_followup(
    followup_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require("followups:write")],
    if_match: IfMatch = None,
) -> schemas.FollowupRead:
    """Cancel an open follow-up (needs `followups:write`); it will never go overdue."""
    ctx = ctx_of(request, session)
    followup = await service.get_followup(ctx, followup_id, lock=True)
    if if_match is not None:
        check_if_match(if_match, followup.version)
    followup = await service.cancel_followup(ctx, followup)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "followup",
        followup.id,
        followup.customer_id,
        ["status"],
    )
    set_etag(response, followup.version)
    return followup_read(followup, principal)


AGENDA_MAX = 500


@followups.get(
    "/agenda",
    summary="An agent's agenda: overdue, due today, upcoming",
    response_model=schemas.Agenda,
    responses=LIST_ERRORS,
)
async def agenda(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("followups:read")],
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
    agent = assignee_id or principal.subject
    now = service.utcnow()
    local_midnight = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    end_of_today = (local_midnight + timedelta(days=1)).astimezone(UTC)
    horizon = (local_midnight + timedelta(days=1 + days)).astimezone(UTC)
    base = sa.select(Followup).where(Followup.assignee_id == agent, Followup.status == "open")

    async def group(*conditions: Any) -> list[schemas.FollowupRead]:
        rows = (
            await session.scalars(
                base.where(*conditions).order_by(Followup.due_at, Followup.id).limit(AGENDA_MAX)
            )
        ).all()
        await privacy.reads(session, request, principal, [("followup", f) for f in rows])
        return [followup_read(f, principal, now) for f in rows]

    return schemas.Agenda(
        assignee_id=agent,
        overdue=await group(Followup.due_at < now),
        due_today=await group(Followup.due_at >= now, Followup.due_at < end_of_today),
        upcoming=await group(Followup.due_at >= end_of_today, Followup.due_at < horizon),
    )


# -- customers: timeline and cadence ------------------------------------------------------------

customers = APIRouter(prefix="/customers/{customer_id}", tags=["customers"])


@customers.get(
    "/timeline",
    summary="A customer's timeline",
    response_model=Page[schemas.TimelineEntry],
    responses=LIST_ERRORS,
)
async def timeline(
    customer_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("interactions:read")],
    type: Annotated[
        list[schemas.TimelineType] | None,
        Query(description="Only these kinds of record (repeat the parameter for several)."),
    ] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.TimelineEntry]:
    """Interactions, purchases, refunds, surveys and follow-ups of one customer, newest first.

    Needs `interactions:read`. One chronological, cursor-paginated stream; each entry embeds
    the full record under the key named by its `type`. Records of merged duplicates appear
    under the survivor.
    """
    types = list(dict.fromkeys(type or get_args(schemas.TimelineType)))
    keys, next_cursor = await repo.timeline_page(
        session, customer_id, types, since, until, cursor, limit
    )

    def ids(kind: str) -> list[uuid.UUID]:
        return [i for k, i, _ in keys if k == kind]

    found_i = await repo.by_ids(session, Interaction, ids("interaction"))
    found_p = await repo.by_ids(session, Purchase, ids("purchase"))
    found_r = await repo.by_ids(session, Refund, ids("refund"))
    found_s = await repo.by_ids(session, Survey, ids("survey"))
    found_f = await repo.by_ids(session, Followup, ids("followup"))
    now = service.utcnow()
    await privacy.reads(
        session,
        request,
        principal,
        [
            *(("interaction", r) for r in found_i.values()),
            *(("refund", r) for r in found_r.values()),
            *(("survey", r) for r in found_s.values()),
            *(("followup", r) for r in found_f.values()),
        ],
    )
    items = []
    for kind, id_, at in keys:
        entry = schemas.TimelineEntry(type=kind, id=id_, at=at)
        if kind == "interaction":
            entry.interaction = interaction_read(found_i[id_], principal)
        elif kind == "purchase":
            entry.purchase = purchase_read(found_p[id_])
        elif kind == "refund":
            refund = schemas.RefundRead.model_validate(found_r[id_])
            entry.refund = refund.model_copy(update={"reason": _mask(principal, refund.reason)})
        elif kind == "survey":
            entry.survey = survey_read(found_s[id_], principal)
        else:
            entry.followup = followup_read(found_f[id_], principal, now)
        items.append(entry)
    return Page(items=items, next_cursor=next_cursor)


def cadence_read(request: Request, state: CustomerState) -> schemas.CadenceRead:
    settings = request.app.state.settings
    default = settings.cadence_days(state.tier)
    return schemas.CadenceRead(
        customer_id=state.customer_id,
        tier=state.tier,
        default_cadence_days=default,
        cadence_days_override=state.cadence_days_override,
        effective_cadence_days=state.cadence_days_override or default,
        last_contact_at=state.last_contact_at,
        next_revisit_at=state.next_revisit_at,
    )


@customers.get(
    "/cadence",
    summary="A customer's revisit plan",
    response_model=schemas.CadenceRead,
    responses=problem_responses(401, 403, 422),
)
async def get_cadence(
    customer_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    _: Annotated[Principal, require("followups:read")],
) -> schemas.CadenceRead:
    """Tier, cadence, last contact and next revisit date (needs `followups:read`).

    The cadence is the tier's default (settings: A 14, B 30, C 90 days; untiered customers
    as C) unless overridden. When the next revisit date comes, a `revisit` follow-up is created.
    """
    state = await service.cadence_state(ctx_of(request, session), customer_id)
    return cadence_read(request, state)


@customers.put(
    "/cadence",
    summary="Override a customer's revisit cadence",
    response_model=schemas.CadenceRead,
    responses=problem_responses(401, 403, 422),
)
async def put_cadence(
    customer_id: uuid.UUID,
    body: schemas.CadenceUpdate,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("followups:write")],
) -> schemas.CadenceRead:
    """Set (or with `null` remove) the customer's own cadence (needs `followups:write`).

    The next revisit date moves at once.
    """
    state = await service.set_cadence(ctx_of(request, session), customer_id, body.cadence_days)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "cadence",
        customer_id,
        customer_id,
        ["cadence_days"],
    )
    return cadence_read(request, state)


# -- GDPR ---------------------------------------------------------------------------------------

gdpr = APIRouter(prefix="/customers/{customer_id}", tags=["gdpr"])


@gdpr.get(
    "/export",
    summary="Export everything held about a customer",
    response_model=schemas.CustomerExport,
    responses=problem_responses(401, 403, 422),
)
async def export_customer(
    customer_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("customers:read")],
    _: Annotated[Principal, require("pii:read")],
) -> schemas.CustomerExport:
    """Every record of the customer in this service, decrypted (GDPR right of access).

    Needs `customers:read` and `pii:read`; each export is written to the audit log (`export`).
    Records of duplicates merged into the customer are included (they were moved to it). An
    unknown customer gets empty lists, not a 404: the service may simply hold nothing.
    """

    async def all_of(model: Any, order: Any) -> list[Any]:
        rows = await session.scalars(
            sa.select(model).where(model.customer_id == customer_id).order_by(order, model.id)
        )
        return list(rows.all())

    state = await session.get(CustomerState, customer_id, populate_existing=True)
    found_i = await all_of(Interaction, Interaction.occurred_at)
    found_f = await all_of(Followup, Followup.due_at)
    found_p = await all_of(Purchase, Purchase.occurred_at)
    found_r = await all_of(Refund, Refund.occurred_at)
    found_s = await all_of(Survey, Survey.submitted_at)
    found_v = await all_of(SurveyInvitation, SurveyInvitation.sent_at)
    await privacy.changed(
        session,
        request,
        principal,
        "export",
        "customer",
        customer_id,
        customer_id,
        ["interactions", "followups", "purchases", "refunds", "surveys", "survey_invitations"],
    )
    now = service.utcnow()
    return schemas.CustomerExport(
        customer_id=customer_id,
        exported_at=now,
        erased_at=state.erased_at if state else None,
        cadence=cadence_read(request, state) if state else None,
        important_dates=[
            schemas.ImportantDate.model_validate(d)
            for d in (state.important_dates if state else [])
        ],
        interactions=[interaction_read(i, principal) for i in found_i],
        followups=[followup_read(f, principal, now) for f in found_f],
        purchases=[purchase_read(p) for p in found_p],
        refunds=[schemas.RefundRead.model_validate(r) for r in found_r],
        surveys=[survey_read(s, principal) for s in found_s],
        survey_invitations=[schemas.InvitationRead.model_validate(v) for v in found_v],
    )


@gdpr.get(
    "/erasure",
    summary="Has this service erased the customer?",
    response_model=schemas.ErasureStatus,
    responses=problem_responses(401, 403, 422),
)
async def erasure_status(
    customer_id: uuid.UUID,
    session: SessionDep,
    _: Annotated[Principal, require("customers:read")],
) -> schemas.ErasureStatus:
    """Whether `customer.erased` for this customer was processed here (needs `customers:read`).

    `erased` turns true once contact names and free text of the customer's records were
    removed (amounts, scores and dates stay for the aggregates) and open follow-ups cancelled.
    Profiles' erasure report asks every service this.
    """
    erased_at = await session.scalar(
        sa.select(CustomerState.erased_at).where(CustomerState.customer_id == customer_id)
    )
    return schemas.ErasureStatus(erased=erased_at is not None, erased_at=erased_at)


# -- purchases ----------------------------------------------------------------------------------

purchases = APIRouter(prefix="/purchases", tags=["purchases"])


@purchases.post(
    "",
    status_code=201,
    summary="Record a purchase",
    response_model=schemas.PurchaseRead,
    responses={
        200: {
            "model": schemas.PurchaseRead,
            "description": "This customer already has a purchase with this `external_ref` and "
            "the same amount, cost and currency: it is returned, nothing is stored twice.",
        },
        201: {"headers": ETAG_HEADER, "description": "Recorded."},
        **problem_responses(401, 403, 422),
        409: problem_responses(409)[409]
        | {"description": "`external_ref` is already a different purchase of this customer"},
    },
)
async def record_purchase(
    request: Request,
    session: SessionDep,
    body: schemas.PurchaseCreate,
    principal: Annotated[Principal, require("purchases:write")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record an order (needs `purchases:write`); margin = amount - cost.

    Idempotent per customer and `external_ref`: posting the same purchase again returns the
    stored one with **200** (not a second 201) and publishes nothing. The same reference with
    a different amount, cost or currency is a 409. Publishes `purchase.recorded`. Money is
    decimal (send strings like `"1250.00"`, at most 4 decimals). The customer need not be
    known yet.
    """

    async def create() -> tuple[int, BaseModel, dict[str, str]]:
        purchase, created = await service.record_purchase(ctx_of(request, session), body)
        if created:
            await privacy.changed(
                session,
                request,
                principal,
                "create",
                "purchase",
                purchase.id,
                purchase.customer_id,
                body.model_dump(exclude_none=True),
            )
        headers = {"ETag": etag_of(purchase.version), "Location": f"/purchases/{purchase.id}"}
        return (201 if created else 200), purchase_read(purchase), headers

    return await idempotent(request, session, principal, idempotency_key, create)


@purchases.get(
    "/{purchase_id}",
    summary="Get a purchase",
    response_model=schemas.PurchaseRead,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
)
async def get_purchase(
    purchase_id: uuid.UUID,
    request: Request,
    response: Response,
    session: SessionDep,
    _: Annotated[Principal, require("purchases:read")],
) -> schemas.PurchaseRead:
    """One purchase with its refunded totals (needs `purchases:read`)."""
    purchase = await service.get_purchase(ctx_of(request, session), purchase_id)
    set_etag(response, purchase.version)
    return purchase_read(purchase)


@purchases.get(
    "", summary="List purchases", response_model=Page[schemas.PurchaseRead], responses=LIST_ERRORS
)
async def list_purchases(
    session: SessionDep,
    _: Annotated[Principal, require("purchases:read")],
    customer_id: CustomerFilter = None,
    status: schemas.PurchaseStatus | None = None,
    external_ref: Annotated[str | None, Query(max_length=200)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.PurchaseRead]:
    """Purchases, newest first (needs `purchases:read`)."""
    stmt = sa.select(Purchase)
    if customer_id is not None:
        stmt = stmt.where(Purchase.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Purchase.status == status)
    if external_ref is not None:
        stmt = stmt.where(Purchase.external_ref == external_ref)
    if since is not None:
        stmt = stmt.where(Purchase.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(Purchase.occurred_at < until)
    rows, next_cursor = await repo.keyset_page(
        session, stmt, Purchase.occurred_at, Purchase.id, cursor, limit
    )
    return Page(items=[purchase_read(p) for p in rows], next_cursor=next_cursor)


@purchases.patch(
    "/{purchase_id}",
    summary="Change a purchase's status",
    response_model=schemas.PurchaseRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def change_purchase_status(
    purchase_id: uuid.UUID,
    body: schemas.PurchaseStatusUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Annotated[Principal, require("purchases:write")],
    if_match: IfMatch = None,
) -> schemas.PurchaseRead:
    """Move a purchase forward (placed → paid → delivered) or cancel it (`purchases:write`).

    Needs `If-Match`. Cancelling publishes `purchase.cancelled` and is refused (409) once the
    purchase has refunds; going backwards is a 409.
    """
    ctx = ctx_of(request, session)
    purchase = await service.get_purchase(ctx, purchase_id, lock=True)
    check_if_match(if_match, purchase.version)
    purchase = await service.change_purchase_status(ctx, purchase, body.status)
    await privacy.changed(
        session,
        request,
        principal,
        "update",
        "purchase",
        purchase.id,
        purchase.customer_id,
        ["status"],
    )
    set_etag(response, purchase.version)
    return purchase_read(purchase)


@purchases.post(
    "/{purchase_id}/refunds",
    status_code=201,
    summary="Refund part or all of a purchase",
    response_model=schemas.RefundRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def refund_purchase(
    purchase_id: uuid.UUID,
    body: schemas.RefundCreate,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("purchases:write")],
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatch = None,
) -> Response:
    """Refund an amount of a purchase (needs `purchases:write`).

    The refunded margin is amount x (margin / amount). A refund larger than what remains
    refundable is a 422 naming `body.amount`; a cancelled purchase cannot be refunded (409).
    Publishes `purchase.refunded`. Send `Idempotency-Key` so a retry never refunds twice.
    """

    async def create() -> tuple[int, BaseModel, dict[str, str]]:
        ctx = ctx_of(request, session)
        purchase = await service.get_purchase(ctx, purchase_id, lock=True)
        if if_match is not None:
            check_if_match(if_match, purchase.version)
        refund = await service.refund_purchase(ctx, purchase, body)
        await privacy.changed(
            session,
            request,
            principal,
            "create",
            "refund",
            refund.id,
            refund.customer_id,
            body.model_dump(exclude_none=True),
        )
        read = schemas.RefundRead.model_validate(refund)
        read = read.model_copy(update={"reason": _mask(principal, read.reason)})
        return 201, read, {"ETag": etag_of(purchase.version)}

    return await idempotent(request, session, principal, idempotency_key, create)


@purchases.get(
    "/{purchase_id}/refunds",
    summary="List a purchase's refunds",
    response_model=list[schemas.RefundRead],
    responses=READ_ERRORS,
)
async def list_refunds(
    purchase_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("purchases:read")],
) -> list[schemas.RefundRead]:
    """Every refund of a purchase, oldest first (needs `purchases:read`)."""
    await service.get_purchase(ctx_of(request, session), purchase_id)
    found = await repo.refunds_of(session, purchase_id)
    await privacy.reads(session, request, principal, [("refund", r) for r in found])
    refunds = [schemas.RefundRead.model_validate(r) for r in found]
    return [r.model_copy(update={"reason": _mask(principal, r.reason)}) for r in refunds]


# -- surveys ------------------------------------------------------------------------------------

surveys = APIRouter(tags=["surveys"])


@surveys.post(
    "/surveys",
    status_code=201,
    summary="Submit a satisfaction survey",
    response_model=schemas.SurveyRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def submit_survey(
    request: Request,
    session: SessionDep,
    body: schemas.SurveyCreate,
    principal: Annotated[Principal, require("surveys:write")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record a customer's answers (needs `surveys:write`).

    Scores are 1-5 per dimension (`product_quality`, `service`, `price`, `delivery`,
    `after_sales`, `overall`); a score outside 1-5 is a 422 naming the field, e.g.
    `body.scores.service`. NPS 0-10, effort 1-7. Answering an invitation links it (each
    invitation once). Publishes `survey.submitted` (without the comment).
    """

    async def create() -> tuple[int, BaseModel, dict[str, str]]:
        survey = await service.submit_survey(ctx_of(request, session), body)
        await privacy.changed(
            session,
            request,
            principal,
            "create",
            "survey",
            survey.id,
            survey.customer_id,
            body.model_dump(exclude_none=True),
        )
        return 201, survey_read(survey, principal), {"Location": f"/surveys/{survey.id}"}

    return await idempotent(request, session, principal, idempotency_key, create)


@surveys.get(
    "/surveys/{survey_id}",
    summary="Get a survey",
    response_model=schemas.SurveyRead,
    responses=READ_ERRORS,
)
async def get_survey(
    survey_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("surveys:read")],
) -> schemas.SurveyRead:
    """One survey response (needs `surveys:read`; the comment needs `pii:read`)."""
    survey = await repo.get(session, Survey, survey_id)
    if survey is None:
        raise service.NotFound(f"Survey {survey_id} does not exist")
    await privacy.reads(session, request, principal, [("survey", survey)])
    return survey_read(survey, principal)


@surveys.get(
    "/surveys",
    summary="List surveys",
    response_model=Page[schemas.SurveyRead],
    responses=LIST_ERRORS,
)
async def list_surveys(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, require("surveys:read")],
    customer_id: CustomerFilter = None,
    context_type: schemas.ContextType | None = None,
    context_id: uuid.UUID | None = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.SurveyRead]:
    """Survey responses, newest first (needs `surveys:read`)."""
    stmt = sa.select(Survey)
    if customer_id is not None:
        stmt = stmt.where(Survey.customer_id == customer_id)
    if context_type is not None:
        stmt = stmt.where(Survey.context_type == context_type)
    if context_id is not None:
        stmt = stmt.where(Survey.context_id == context_id)
    if since is not None:
        stmt = stmt.where(Survey.submitted_at >= since)
    if until is not None:
        stmt = stmt.where(Survey.submitted_at < until)
    rows, next_cursor = await repo.keyset_page(
        session, stmt, Survey.submitted_at, Survey.id, cursor, limit
    )
    await privacy.reads(session, request, principal, [("survey", s) for s in rows])
    return Page(items=[survey_read(s, principal) for s in rows], next_cursor=next_cursor)


@surveys.post(
    "/survey-invitations",
    status_code=201,
    summary="Invite a customer to a survey",
    response_model=schemas.InvitationRead,
    responses={
        **problem_responses(401, 403, 422),
        409: problem_responses(409)[409]
        | {
            "description": "Suppressed: the customer was invited within the suppression window "
            "(`suppressed_until` says when they can be asked again), or was erased."
        },
    },
)
async def invite(
    request: Request,
    session: SessionDep,
    body: schemas.InvitationCreate,
    principal: Annotated[Principal, require("surveys:write")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record that a customer is invited to a survey, unless asked recently (`surveys:write`).

    No customer is asked more than once per `survey_suppression_days` (default 30): a second
    invitation within the window is a 409 `survey-suppressed`; send the survey only on 201.
    """

    async def create() -> tuple[int, BaseModel, dict[str, str]]:
        invitation = await service.invite_to_survey(ctx_of(request, session), body)
        await privacy.changed(
            session,
            request,
            principal,
            "create",
            "survey_invitation",
            invitation.id,
            invitation.customer_id,
            body.model_dump(exclude_none=True),
        )
        read = schemas.InvitationRead.model_validate(invitation)
        return 201, read, {"Location": f"/survey-invitations/{invitation.id}"}

    return await idempotent(request, session, principal, idempotency_key, create)


@surveys.get(
    "/survey-invitations/{invitation_id}",
    summary="Get a survey invitation",
    response_model=schemas.InvitationRead,
    responses=READ_ERRORS,
)
async def get_invitation(
    invitation_id: uuid.UUID,
    session: SessionDep,
    _: Annotated[Principal, require("surveys:read")],
) -> schemas.InvitationRead:
    """One invitation and, once answered, its survey (needs `surveys:read`)."""
    invitation = await repo.get(session, SurveyInvitation, invitation_id)
    if invitation is None:
        raise service.NotFound(f"Survey invitation {invitation_id} does not exist")
    return schemas.InvitationRead.model_validate(invitation)


ROUTERS = [interactions, followups, customers, gdpr, purchases, surveys]
OPENAPI_TAGS = [
    {"name": "interactions", "description": "Every contact with a customer."},
    {"name": "follow-ups", "description": "Planned contacts, the agenda, overdue tracking."},
    {"name": "customers", "description": "Per-customer views: timeline and revisit cadence."},
    {"name": "purchases", "description": "Orders, margins and refunds."},
    {"name": "surveys", "description": "Satisfaction surveys (CSAT by dimension, NPS)."},
    {"name": "gdpr", "description": "Data export and erasure status of a customer."},
]
