"""Complaint rules: the state machine, SLA clocks, escalation, assignment, revisit.

Every function changes state and emits its events in the caller's transaction; none commits.
Complaints are read `FOR UPDATE` before any change so a request never overwrites what the SLA
scheduler (or another request) committed meanwhile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

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
from services.complaints.models import Action, Agent, Complaint, Note, Transition
from services.complaints.schemas import (
    ActionCreate,
    ActionUpdate,
    AssignmentRequest,
    ComplaintCreate,
    ComplaintUpdate,
    RatingRequest,
    TransitionRequest,
)
from services.complaints.sla import SlaClock
from shared.contracts import complaints as ev
from shared.events.registry import EventContract
from shared.outbox import Outbox

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
SYSTEM = "system"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """What the rules need besides the session: settings, the SLA clock and the outbox."""

    settings: Settings
    clock: SlaClock
    outbox: Outbox

    @classmethod
    def of(cls, settings: Settings, outbox: Outbox) -> Context:
        return cls(settings, SlaClock(settings), outbox)


# -- SLA ---------------------------------------------------------------------------------------


def apply_targets(ctx: Context, c: Complaint) -> None:
    """Take the targets of the complaint's severity and tier from the matrix, then reschedule."""
    targets = ctx.settings.targets(c.severity, c.tier)
    c.first_response_target_s = targets.first_response_s
    c.resolution_target_s = targets.resolution_s
    reschedule(ctx, c)


def reschedule(ctx: Context, c: Complaint) -> None:
    """Recompute deadlines (stored targets, pauses), the next check and the SLA status."""
    ratio = ctx.settings.sla_warning_ratio
    clock = ctx.clock
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


def remaining_seconds(ctx: Context, c: Complaint, now: datetime) -> int | None:
    if c.status == "received":
        due = c.first_response_due_at
    elif c.status in OPEN_STATUSES:
        due = c.resolution_due_at
    else:
        return None
    ref = c.paused_since or now
    if due >= ref:
        return int(ctx.clock.elapsed(ref, due))
    return -int(ctx.clock.elapsed(due, ref))


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


def check_sla(ctx: Context, c: Complaint, now: datetime) -> list[EventContract]:
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


async def run_sla_checks(ctx: Context, session: AsyncSession) -> int:
    """One scheduler pass: claim due complaints (SKIP LOCKED), flag and publish what fell due."""
    now = utcnow()
    due = await repo.claim_due_sla_checks(session, now, ctx.settings.sla_scheduler_batch)
    events: list[EventContract] = []
    for c in due:
        events.extend(check_sla(ctx, c, now))
    await session.flush()
    await ctx.outbox.emit(session, *events)
    return len(due)


# -- intake ------------------------------------------------------------------------------------


async def register(
    ctx: Context, session: AsyncSession, data: ComplaintCreate, actor: str
) -> Complaint:
    now = utcnow()
    customer_id = await repo.resolve_customer(session, data.customer_id)
    tier = await repo.tier_of(session, customer_id) or ctx.settings.default_tier
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
    session.add(Transition(complaint_id=c.id, to_status="received", actor=actor, at=now))
    if data.assignee:
        c.assignee = data.assignee
    elif data.team:
        c.team = data.team
        c.assignee = await _least_loaded_agent(session, data.team)
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
    if data.severity == "critical":
        events.append(_escalate(c, "critical_intake", now, MANAGEMENT_LEVEL))
    await session.flush()
    await ctx.outbox.emit(session, *events)
    return c


def scrub(c: Complaint, now: datetime) -> None:
    """Drop the complainant's personal data and free text; keep category, timings, ratings."""
    c.complainant_name = c.complainant_email = c.complainant_phone = None
    c.subject = c.description = c.root_cause = c.resolution = c.rating_comment = None
    c.erased_at = now


# -- lifecycle ---------------------------------------------------------------------------------


async def get(session: AsyncSession, complaint_id: uuid.UUID, *, lock: bool = False) -> Complaint:
    c = await repo.get(session, complaint_id, lock=lock)
    if c is None:
        raise ComplaintNotFound(f"Complaint {complaint_id} does not exist")
    return c


def allowed_moves(ctx: Context, c: Complaint, now: datetime) -> list[str]:
    moves = list(TRANSITIONS[c.status])
    if c.status in REOPENABLE and not _within_reopen_window(ctx, c, now):
        moves.remove("investigating")
    return moves


def _within_reopen_window(ctx: Context, c: Complaint, now: datetime) -> bool:
    resolved_at = c.resolved_at or c.updated_at
    return now - resolved_at <= timedelta(days=ctx.settings.reopen_window_days)


def _resume_clock(ctx: Context, c: Complaint, now: datetime) -> None:
    if c.paused_since is not None:
        c.paused_seconds = (c.paused_seconds or 0.0) + ctx.clock.elapsed(c.paused_since, now)
        c.paused_since = None


async def transition(
    ctx: Context, session: AsyncSession, c: Complaint, req: TransitionRequest, actor: str
) -> Complaint:
    now = utcnow()
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
            f"The complaint can be reopened only within {ctx.settings.reopen_window_days:g} "
            "days of its resolution",
            current_status=current,
            requested=target,
            allowed=allowed_moves(ctx, c, now),
            reopen_window_days=ctx.settings.reopen_window_days,
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

    base = {"customer_id": c.customer_id, "occurred_at": now, "complaint_id": c.id}
    events: list[EventContract] = [
        ev.ComplaintStatusChanged(**base, from_status=current, to_status=target, actor_id=actor)
    ]
    if current == "waiting_on_customer":
        _resume_clock(ctx, c, now)
    if target == "acknowledged":
        c.first_response_at = now
        seconds = ctx.clock.elapsed(c.received_at, now)
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
        c.revisit_due_at = now + timedelta(days=ctx.settings.revisit_after_days)
        seconds = max(ctx.clock.elapsed(c.received_at, now) - (c.paused_seconds or 0.0), 0.0)
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
        c.paused_seconds = (c.paused_seconds or 0.0) + ctx.clock.elapsed(c.resolved_at, now)
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
    session.add(
        Transition(
            complaint_id=c.id,
            from_status=current,
            to_status=target,
            actor=actor,
            note=req.note,
            at=now,
        )
    )
    # A pass over the clock right away: a reopened complaint may already be overdue.
    events.extend(check_sla(ctx, c, now) if reopening else [])
    await session.flush()
    await ctx.outbox.emit(session, *events)
    return c


async def update(ctx: Context, session: AsyncSession, c: Complaint, data: ComplaintUpdate) -> None:
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise MissingField(f"`{name}` cannot be cleared", field=name)
        setattr(c, name, value)
    if changes:
        c.version += 1
        c.updated_at = utcnow()
        if "severity" in changes:
            apply_targets(ctx, c)
        await session.flush()


async def escalate(
    ctx: Context, session: AsyncSession, c: Complaint, note: str | None, actor: str
) -> None:
    now = utcnow()
    event = _escalate(c, "manual", now)
    c.version += 1
    c.updated_at = now
    session.add(Note(id=uuid.uuid4(), complaint_id=c.id, author=actor, body=note, created_at=now))
    await session.flush()
    await ctx.outbox.emit(session, event)


async def rate(ctx: Context, session: AsyncSession, c: Complaint, data: RatingRequest) -> None:
    if c.status not in ("resolved", "closed"):
        raise NotRateable(
            f"Only resolved or closed complaints can be rated; this one is {c.status}",
            current_status=c.status,
        )
    now = utcnow()
    c.rating, c.rating_comment, c.rated_at = data.rating, data.comment, now
    c.version += 1
    c.updated_at = now
    await session.flush()
    await ctx.outbox.emit(
        session,
        ev.ComplaintRated(
            customer_id=c.customer_id, occurred_at=now, complaint_id=c.id, rating=data.rating
        ),
    )


# -- notes and actions -------------------------------------------------------------------------


async def add_note(session: AsyncSession, c: Complaint, body: str, author: str) -> Note:
    note = Note(id=uuid.uuid4(), complaint_id=c.id, author=author, body=body, created_at=utcnow())
    session.add(note)
    await session.flush()
    return note


async def add_action(session: AsyncSession, c: Complaint, data: ActionCreate) -> Action:
    now = utcnow()
    action = Action(id=uuid.uuid4(), complaint_id=c.id, created_at=now, updated_at=now)
    for name, value in data.model_dump().items():
        setattr(action, name, value)
    session.add(action)
    await session.flush()
    return action


async def update_action(
    session: AsyncSession, complaint_id: uuid.UUID, action_id: uuid.UUID, data: ActionUpdate
) -> Action:
    action = await repo.get_action(session, complaint_id, action_id)
    if action is None:
        raise ActionNotFound(f"Action {action_id} of complaint {complaint_id} does not exist")
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name != "due_date":
            raise MissingField(f"`{name}` cannot be cleared", field=name)
        setattr(action, name, value)
    action.updated_at = utcnow()
    await session.flush()
    return action


# -- assignment --------------------------------------------------------------------------------


async def _least_loaded_agent(session: AsyncSession, team: str) -> str:
    agent = await repo.least_loaded_agent(session, team, OPEN_STATUSES)
    if agent is None:
        raise NoAgentAvailable(f"Team {team} has no active agent", team=team)
    return agent


async def assign(session: AsyncSession, c: Complaint, req: AssignmentRequest) -> None:
    if req.team is not None:
        c.team = req.team
        c.assignee = await _least_loaded_agent(session, req.team)
    else:
        assert req.assignee is not None
        agent = await session.get(Agent, req.assignee)
        c.assignee = req.assignee
        c.team = agent.team if agent is not None else None
    c.version += 1
    c.updated_at = utcnow()
    await session.flush()


# -- consumed customer events ------------------------------------------------------------------


async def retarget_customer(
    ctx: Context, session: AsyncSession, customer_id: uuid.UUID, tier: str
) -> int:
    """A tier change: the open complaints of the customer follow the new tier's targets."""
    open_complaints = await repo.open_of_customer(session, customer_id, OPEN_STATUSES)
    now = utcnow()
    for c in open_complaints:
        if c.tier != tier:
            c.tier = tier
            c.version += 1
            c.updated_at = now
            apply_targets(ctx, c)
    await session.flush()
    return len(open_complaints)
