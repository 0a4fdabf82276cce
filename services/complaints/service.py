"""Complaint rules: the state machine, SLA clocks, escalation, assignment, revisit.

Every function changes state and emits its events in the caller's transaction; none commits.
Complaints are read `FOR UPDATE` before any change so a request never overwrites what the SLA
scheduler (or another request) committed meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from services.complaints import repository as repo
from services.complaints.config import Settings
from services.complaints.errors import (
    ActionNotFound,
    ComplaintNotFound,
    MissingField,
    NoAgentAvailable,
    NotRateable,
    ReopenWindowPassed,
    TransitionNotAllowed,
)
from services.complaints.models import Action, Complaint, Note, Transition
from services.complaints.schemas import (
    ActionCreate,
    ActionUpdate,
    AgentUpsert,
    AssignmentRequest,
    ComplaintCreate,
    ComplaintUpdate,
    RatingRequest,
    TransitionRequest,
)
from services.complaints.sla import SlaClock
from shared.context import RequestContext
from shared.contracts import complaints as ev
from shared.events.registry import EventContract
from shared.http import check_if_match

OPEN_STATUSES = ("received", "acknowledged", "investigating", "waiting_on_customer")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("acknowledged",),
    "acknowledged": ("investigating",),
    "investigating": ("waiting_on_customer", "resolved"),
    "waiting_on_customer": ("investigating", "resolved"),
    "resolved": ("closed", "investigating"),
    "closed": ("investigating",),
}
REOPENABLE = ("resolved", "closed")
MANAGEMENT_LEVEL = 2


def settings_of(ctx: RequestContext) -> Settings:
    return cast(Settings, ctx.settings)


def sla_clock(ctx: RequestContext) -> SlaClock:
    """SLA time of the service's calendar (wall-clock time unless business hours are on)."""
    return SlaClock(settings_of(ctx))


# -- SLA ---------------------------------------------------------------------------------------


def apply_targets(ctx: RequestContext, c: Complaint) -> None:
    """Take the targets of the complaint's severity and tier from the matrix, then reschedule."""
    targets = settings_of(ctx).targets(c.severity, c.tier)
    c.first_response_target_s = targets.first_response_s
    c.resolution_target_s = targets.resolution_s
    reschedule(ctx, c)


def reschedule(ctx: RequestContext, c: Complaint) -> None:
    """Recompute deadlines (stored targets, pauses), the next check and the SLA status."""
    ratio = settings_of(ctx).sla_warning_ratio
    clock = sla_clock(ctx)
    first, resolution = c.first_response_target_s, c.resolution_target_s
    # Waiting on the customer only happens after the first response, so pauses move only the
    # resolution deadline; the first-response deadline stays what it was at receipt.
    c.first_response_due_at = clock.add(c.received_at, first)
    c.first_response_warn_at = clock.add(c.received_at, first * ratio)
    paused = c.paused_seconds or 0.0
    c.resolution_due_at = clock.add(c.received_at, resolution + paused)
    c.resolution_warn_at = clock.add(c.received_at, resolution * ratio + paused)

    pending: list[datetime] = []
    if c.first_response_at is None:
        if not c.first_response_warned:
            pending.append(c.first_response_warn_at)
        if not c.first_response_breached:
            pending.append(c.first_response_due_at)
    if c.status in OPEN_STATUSES and c.paused_since is None:
        if not c.resolution_warned:
            pending.append(c.resolution_warn_at)
        if not c.resolution_breached:
            pending.append(c.resolution_due_at)
    c.next_sla_check_at = min(pending) if pending else None

    if c.status == "received":
        c.next_due_at = c.first_response_due_at
    elif c.status in OPEN_STATUSES:
        c.next_due_at = c.resolution_due_at
    else:
        c.next_due_at = None

    if c.first_response_breached or c.resolution_breached:
        c.sla_status = "breached"
    elif (c.first_response_at is None and c.first_response_warned) or (
        c.status in OPEN_STATUSES and c.resolution_warned
    ):
        c.sla_status = "warning"
    else:
        c.sla_status = "on_track"


def remaining_seconds(ctx: RequestContext, c: Complaint, now: datetime) -> int | None:
    if c.status == "received":
        due = c.first_response_due_at
    elif c.status in OPEN_STATUSES:
        due = c.resolution_due_at
    else:
        return None
    ref = c.paused_since or now
    if due >= ref:
        return int(sla_clock(ctx).elapsed(ref, due))
    return -int(sla_clock(ctx).elapsed(due, ref))


def _escalate(
    c: Complaint, reason: Any, now: datetime, level: int | None = None
) -> ev.ComplaintEscalated:
    """Raise the escalation level (by one, or to `level`) and describe it as an event."""
    c.escalation_level = c.escalation_level + 1 if level is None else max(level, c.escalation_level)
    return ev.ComplaintEscalated(
        customer_id=c.customer_id,
        occurred_at=now,
        complaint_id=c.id,
        reason=reason,
        level=c.escalation_level,
    )


def check_sla(ctx: RequestContext, c: Complaint, now: datetime) -> list[EventContract]:
    """Warnings and breaches that fell due; each flag is set where its event is emitted."""
    events: list[EventContract] = []
    base = {"customer_id": c.customer_id, "occurred_at": now, "complaint_id": c.id}
    if c.first_response_at is None:
        if not c.first_response_warned and c.first_response_warn_at <= now:
            c.first_response_warned = True
            events.append(
                ev.ComplaintSlaWarning(
                    **base, target="first_response", due_at=c.first_response_due_at
                )
            )
        if not c.first_response_breached and c.first_response_due_at <= now:
            c.first_response_breached = True
            events.append(
                ev.ComplaintSlaBreached(
                    **base, target="first_response", due_at=c.first_response_due_at
                )
            )
            events.append(_escalate(c, "sla_breach", now))
    if c.status in OPEN_STATUSES and c.paused_since is None:
        if not c.resolution_warned and c.resolution_warn_at <= now:
            c.resolution_warned = True
            events.append(
                ev.ComplaintSlaWarning(**base, target="resolution", due_at=c.resolution_due_at)
            )
        if not c.resolution_breached and c.resolution_due_at <= now:
            c.resolution_breached = True
            events.append(
                ev.ComplaintSlaBreached(**base, target="resolution", due_at=c.resolution_due_at)
            )
            events.append(_escalate(c, "sla_breach", now))
    if events:
        c.version += 1
        c.updated_at = now
    reschedule(ctx, c)
    return events


async def run_sla_checks(ctx: RequestContext) -> int:
    """One scheduler pass: claim due complaints (SKIP LOCKED), flag and publish what fell due."""
    now = ctx.now()
    batch = settings_of(ctx).sla_scheduler_batch
    due = await repo.claim_due_sla_checks(ctx.session, now, batch)
    events: list[EventContract] = []
    for c in due:
        events.extend(check_sla(ctx, c, now))
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, *events)
    return len(due)


# -- intake ------------------------------------------------------------------------------------


async def register(ctx: RequestContext, data: ComplaintCreate) -> Complaint:
    session, now = ctx.session, ctx.now()
    customer_id = await repo.resolve_customer(session, data.customer_id)
    tier = await repo.tier_of(session, customer_id) or settings_of(ctx).default_tier
    c = Complaint(
        id=uuid.uuid4(),
        customer_id=customer_id,
        channel=data.channel,
        category=data.category,
        severity=data.severity,
        status="received",
        tier=tier,
        complainant_name=data.complainant.name,
        complainant_email=data.complainant.email,
        complainant_phone=data.complainant.phone,
        subject=data.subject,
        description=data.description,
        related_purchase_id=data.related_purchase_id,
        related_interaction_id=data.related_interaction_id,
        escalation_level=0,
        received_at=now,
        paused_seconds=0.0,
        first_response_warned=False,
        first_response_breached=False,
        resolution_warned=False,
        resolution_breached=False,
        reopen_count=0,
        version=1,
        created_at=now,
        updated_at=now,
    )
    if await repo.is_erased(session, customer_id):
        # The erasure was processed first; it wins whatever the order of arrival.
        scrub(c, now)
    apply_targets(ctx, c)
    session.add(c)
    session.add(Transition(complaint_id=c.id, to_status="received", actor=ctx.actor, at=now))
    if data.assignee:
        c.assignee = data.assignee
    elif data.team:
        c.team = data.team
        c.assignee = await _least_loaded_agent(ctx, data.team)
    events: list[EventContract] = [
        ev.ComplaintReceived(
            customer_id=customer_id,
            occurred_at=now,
            complaint_id=c.id,
            channel=data.channel,
            category=data.category,
            severity=data.severity,
            first_response_due_at=c.first_response_due_at,
            resolution_due_at=c.resolution_due_at,
        )
    ]
    if c.assignee or c.team:
        events.append(_assigned(c, now))
    if data.severity == "critical":
        events.append(_escalate(c, "critical_intake", now, MANAGEMENT_LEVEL))
    await session.flush()
    await ctx.outbox.emit(session, *events)
    await _audit(ctx, "create", c, data.model_dump(exclude_none=True))
    return c


def scrub(c: Complaint, now: datetime) -> None:
    """Drop the complainant's personal data and free text; keep category, timings, ratings."""
    c.complainant_name = c.complainant_email = c.complainant_phone = None
    c.subject = c.description = c.root_cause = c.resolution = c.rating_comment = None
    c.erased_at = now


async def _audit(ctx: RequestContext, action: str, c: Complaint, fields: Iterable[str]) -> None:
    await ctx.audit_change(action, "complaint", c.id, c.customer_id, fields)


# -- reads -------------------------------------------------------------------------------------


async def get(ctx: RequestContext, complaint_id: uuid.UUID, *, lock: bool = False) -> Complaint:
    c = await repo.get(ctx.session, complaint_id, lock=lock)
    if c is None:
        raise ComplaintNotFound(f"Complaint {complaint_id} does not exist")
    return c


async def read(ctx: RequestContext, complaint_id: uuid.UUID) -> Complaint:
    """The complaint; an unmasked read of its personal data is audited."""
    c = await get(ctx, complaint_id)
    await ctx.audit_reads([("complaint", c, c.customer_id)])
    return c


async def queue(
    ctx: RequestContext, filters: repo.QueueFilter, cursor: str | None, limit: int
) -> tuple[list[Complaint], str | None]:
    items, next_cursor = await repo.queue(ctx.session, filters, cursor, limit)
    await ctx.audit_reads([("complaint", c, c.customer_id) for c in items])
    return items, next_cursor


async def history(ctx: RequestContext, complaint_id: uuid.UUID) -> Sequence[Transition]:
    c = await get(ctx, complaint_id)
    rows = await repo.transitions(ctx.session, complaint_id)
    await ctx.audit_reads([("complaint_transition", t, c.customer_id) for t in rows])
    return rows


async def notes(ctx: RequestContext, complaint_id: uuid.UUID) -> Sequence[Note]:
    c = await get(ctx, complaint_id)
    rows = await repo.notes(ctx.session, complaint_id)
    await ctx.audit_reads([("complaint_note", n, c.customer_id) for n in rows])
    return rows


async def actions(ctx: RequestContext, complaint_id: uuid.UUID) -> Sequence[Action]:
    c = await get(ctx, complaint_id)
    rows = await repo.actions(ctx.session, complaint_id)
    await ctx.audit_reads([("complaint_action", a, c.customer_id) for a in rows])
    return rows


# -- lifecycle ---------------------------------------------------------------------------------


def allowed_moves(ctx: RequestContext, c: Complaint, now: datetime) -> list[str]:
    moves = list(TRANSITIONS[c.status])
    if c.status in REOPENABLE and not _within_reopen_window(ctx, c, now):
        moves.remove("investigating")
    return moves


def _within_reopen_window(ctx: RequestContext, c: Complaint, now: datetime) -> bool:
    resolved_at = c.resolved_at or c.updated_at
    return now - resolved_at <= timedelta(days=settings_of(ctx).reopen_window_days)


def _resume_clock(ctx: RequestContext, c: Complaint, now: datetime) -> None:
    if c.paused_since is not None:
        c.paused_seconds = (c.paused_seconds or 0.0) + sla_clock(ctx).elapsed(c.paused_since, now)
        c.paused_since = None


async def transition(
    ctx: RequestContext,
    complaint_id: uuid.UUID,
    req: TransitionRequest,
    if_match: str | None = None,
) -> Complaint:
    """Move the complaint to `req.to_status`; `if_match` is checked when given."""
    c = await get(ctx, complaint_id, lock=True)
    if if_match is not None:
        check_if_match(if_match, c.version)
    now = ctx.now()
    current, target = c.status, req.to_status
    if target not in TRANSITIONS[current]:
        raise TransitionNotAllowed(
            f"A {current} complaint cannot move to {target}",
            current_status=current,
            requested=target,
            allowed=allowed_moves(ctx, c, now),
        )
    reopening = current in REOPENABLE and target == "investigating"
    if reopening and not _within_reopen_window(ctx, c, now):
        raise ReopenWindowPassed(
            f"The complaint can be reopened only within {settings_of(ctx).reopen_window_days:g} "
            "days of its resolution",
            current_status=current,
            requested=target,
            allowed=allowed_moves(ctx, c, now),
            reopen_window_days=settings_of(ctx).reopen_window_days,
        )
    if target == "resolved":
        if req.resolution:
            c.resolution = req.resolution
        if req.root_cause_category:
            c.root_cause_category = req.root_cause_category
        if not c.resolution:
            raise MissingField(
                "Resolving needs a resolution text (send `resolution`)", field="resolution"
            )
    if target == "closed" and not req.revisit_outcome:
        raise MissingField(
            "Closing records the revisit's outcome (send `revisit_outcome`)",
            field="revisit_outcome",
        )

    clock = sla_clock(ctx)
    base = {"customer_id": c.customer_id, "occurred_at": now, "complaint_id": c.id}
    events: list[EventContract] = [
        ev.ComplaintStatusChanged(**base, from_status=current, to_status=target, actor_id=ctx.actor)
    ]
    if current == "waiting_on_customer":
        _resume_clock(ctx, c, now)
    if target == "acknowledged":
        c.first_response_at = now
        seconds = clock.elapsed(c.received_at, now)
        met = seconds <= c.first_response_target_s and not c.first_response_breached
        events.append(
            ev.ComplaintAcknowledged(
                **base, first_response_seconds=int(seconds), first_response_met=met
            )
        )
    elif target == "waiting_on_customer":
        c.paused_since = now
    elif target == "resolved":
        c.resolved_at = now
        c.revisit_due_at = now + timedelta(days=settings_of(ctx).revisit_after_days)
        seconds = max(clock.elapsed(c.received_at, now) - (c.paused_seconds or 0.0), 0.0)
        events.append(
            ev.ComplaintResolved(
                **base,
                category=c.category,
                severity=c.severity,
                root_cause=c.root_cause_category,
                resolution_seconds=int(seconds),
                resolution_met=seconds <= c.resolution_target_s and not c.resolution_breached,
            )
        )
    elif target == "closed":
        c.closed_at = now
        c.revisit_outcome = req.revisit_outcome
        events.append(ev.ComplaintClosed(**base, revisit_outcome=req.revisit_outcome))
    elif reopening:
        # The clock stood still while the complaint was resolved; it runs again from here.
        assert c.resolved_at is not None
        c.paused_seconds = (c.paused_seconds or 0.0) + clock.elapsed(c.resolved_at, now)
        c.resolved_at = None
        c.closed_at = None
        c.revisit_due_at = None
        c.revisit_outcome = None
        c.reopen_count += 1
        events.append(ev.ComplaintReopened(**base))

    c.status = target
    c.version += 1
    c.updated_at = now
    reschedule(ctx, c)
    ctx.session.add(
        Transition(
            complaint_id=c.id,
            from_status=current,
            to_status=target,
            actor=ctx.actor,
            note=req.note,
            at=now,
        )
    )
    # A pass over the clock right away: a reopened complaint may already be overdue.
    events.extend(check_sla(ctx, c, now) if reopening else [])
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, *events)
    await _audit(ctx, "update", c, ["status", *req.model_dump(exclude_none=True)])
    return c


async def update(
    ctx: RequestContext, complaint_id: uuid.UUID, data: ComplaintUpdate, if_match: str | None
) -> Complaint:
    """Change investigation details of the version the caller read (`if_match`, required)."""
    c = await get(ctx, complaint_id, lock=True)
    check_if_match(if_match, c.version)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise MissingField(f"`{name}` cannot be cleared", field=name)
        setattr(c, name, value)
    if changes:
        c.version += 1
        c.updated_at = ctx.now()
        if "severity" in changes:
            apply_targets(ctx, c)
        await ctx.session.flush()
    await _audit(ctx, "update", c, changes)
    return c


async def escalate(ctx: RequestContext, complaint_id: uuid.UUID, note: str | None) -> Complaint:
    c = await get(ctx, complaint_id, lock=True)
    now = ctx.now()
    event = _escalate(c, "manual", now)
    c.version += 1
    c.updated_at = now
    ctx.session.add(
        Note(id=uuid.uuid4(), complaint_id=c.id, author=ctx.actor, body=note, created_at=now)
    )
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, event)
    await _audit(ctx, "update", c, ["escalation_level", *(["note"] if note else [])])
    return c


async def rate(ctx: RequestContext, complaint_id: uuid.UUID, data: RatingRequest) -> Complaint:
    c = await get(ctx, complaint_id, lock=True)
    if c.status not in ("resolved", "closed"):
        raise NotRateable(
            f"Only resolved or closed complaints can be rated; this one is {c.status}",
            current_status=c.status,
        )
    now = ctx.now()
    c.rating, c.rating_comment, c.rated_at = data.rating, data.comment, now
    c.version += 1
    c.updated_at = now
    await ctx.session.flush()
    await ctx.outbox.emit(
        ctx.session,
        ev.ComplaintRated(
            customer_id=c.customer_id, occurred_at=now, complaint_id=c.id, rating=data.rating
        ),
    )
    await _audit(ctx, "update", c, data.model_dump(exclude_none=True))
    return c


# -- notes and actions -------------------------------------------------------------------------


async def add_note(ctx: RequestContext, complaint_id: uuid.UUID, body: str) -> Note:
    c = await get(ctx, complaint_id)
    note = Note(
        id=uuid.uuid4(), complaint_id=c.id, author=ctx.actor, body=body, created_at=ctx.now()
    )
    ctx.session.add(note)
    await ctx.session.flush()
    await ctx.audit_change("create", "complaint_note", note.id, c.customer_id, ["body"])
    return note


async def add_action(ctx: RequestContext, complaint_id: uuid.UUID, data: ActionCreate) -> Action:
    c = await get(ctx, complaint_id)
    now = ctx.now()
    action = Action(id=uuid.uuid4(), complaint_id=c.id, created_at=now, updated_at=now)
    for name, value in data.model_dump().items():
        setattr(action, name, value)
    ctx.session.add(action)
    await ctx.session.flush()
    await ctx.audit_change(
        "create", "complaint_action", action.id, c.customer_id, data.model_dump(exclude_none=True)
    )
    return action


async def update_action(
    ctx: RequestContext, complaint_id: uuid.UUID, action_id: uuid.UUID, data: ActionUpdate
) -> Action:
    action = await repo.get_action(ctx.session, complaint_id, action_id)
    if action is None:
        raise ActionNotFound(f"Action {action_id} of complaint {complaint_id} does not exist")
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name != "due_date":
            raise MissingField(f"`{name}` cannot be cleared", field=name)
        setattr(action, name, value)
    action.updated_at = ctx.now()
    await ctx.session.flush()
    c = await get(ctx, complaint_id)
    await ctx.audit_change("update", "complaint_action", action.id, c.customer_id, changes)
    return action


# -- assignment --------------------------------------------------------------------------------


async def _least_loaded_agent(ctx: RequestContext, team: str) -> str:
    agent = await repo.least_loaded_agent(ctx.session, team, OPEN_STATUSES)
    if agent is None:
        raise NoAgentAvailable(f"Team {team} has no active agent", team=team)
    return agent


async def assign(ctx: RequestContext, complaint_id: uuid.UUID, req: AssignmentRequest) -> Complaint:
    c = await get(ctx, complaint_id, lock=True)
    if req.team is not None:
        c.team = req.team
        c.assignee = await _least_loaded_agent(ctx, req.team)
    else:
        assert req.assignee is not None
        agent = await repo.agent(ctx.session, req.assignee)
        c.assignee = req.assignee
        c.team = agent.team if agent is not None else None
    c.version += 1
    c.updated_at = ctx.now()
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, _assigned(c, c.updated_at))
    await _audit(ctx, "update", c, ["assignee", "team"])
    return c


def _assigned(c: Complaint, at: datetime) -> ev.ComplaintAssigned:
    return ev.ComplaintAssigned(
        customer_id=c.customer_id,
        occurred_at=at,
        complaint_id=c.id,
        assignee_id=c.assignee,
        team=c.team,
    )


async def put_agent(ctx: RequestContext, agent_id: str, data: AgentUpsert) -> Any:
    """Register or change an agent; returns the agent with their open complaint load."""
    await repo.upsert_agent(ctx.session, agent_id, data.team, data.active)
    await ctx.audit_change("update", "agent", agent_id, None, ["team", "active"])
    rows = await repo.agents_with_load(ctx.session, data.team, OPEN_STATUSES)
    return next(r for r in rows if r.id == agent_id)


async def agents(ctx: RequestContext, team: str | None) -> Sequence[Any]:
    return await repo.agents_with_load(ctx.session, team, OPEN_STATUSES)


# -- consumed customer events ------------------------------------------------------------------


async def retarget_customer(ctx: RequestContext, customer_id: uuid.UUID, tier: str) -> int:
    """A tier change: the open complaints of the customer follow the new tier's targets."""
    open_complaints = await repo.open_of_customer(ctx.session, customer_id, OPEN_STATUSES)
    now = ctx.now()
    for c in open_complaints:
        if c.tier != tier:
            c.tier = tier
            c.version += 1
            c.updated_at = now
            apply_targets(ctx, c)
    await ctx.session.flush()
    return len(open_complaints)


async def tier_changed(
    ctx: RequestContext, customer_id: uuid.UUID, tier: str, as_of: datetime
) -> None:
    if await repo.record_tier(ctx.session, customer_id, tier, as_of):  # newer than we knew
        await retarget_customer(ctx, customer_id, tier)


async def merge_customers(ctx: RequestContext, survivor: uuid.UUID, duplicate: uuid.UUID) -> None:
    """The duplicate's complaints, now and later, belong to the survivor."""
    await repo.redirect_customer(ctx.session, duplicate, survivor)
    tier = await repo.tier_of(ctx.session, survivor)
    if tier is not None:
        await retarget_customer(ctx, survivor, tier)
    await ctx.audit_change("merge", "customer", duplicate, survivor, ["customer_id"])
    # The survivor was erased first (events of different customers come in any order):
    # what the duplicate brings along is scrubbed too.
    if await repo.is_erased(ctx.session, survivor):
        await _scrub_customer(ctx, survivor)


async def erase_customer(ctx: RequestContext, customer_id: uuid.UUID, at: datetime) -> None:
    await repo.mark_erased(ctx.session, customer_id, at)
    await _scrub_customer(ctx, customer_id)


async def _scrub_customer(ctx: RequestContext, customer_id: uuid.UUID) -> None:
    await repo.scrub_customer(ctx.session, customer_id)
    await ctx.audit_change(
        "erase",
        "customer",
        customer_id,
        customer_id,
        [f"complaints.{f}" for f in ctx.pii.fields_of("complaint")]
        + [
            "complaint_notes.body",
            "complaint_transitions.note",
            "complaint_actions.description",
        ],
    )
