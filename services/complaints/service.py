"""Case rules, for every case type: lifecycles, SLA clocks from the SLA policies, routing,
escalation that moves work, outcome notices, revisit.

Every function changes state and emits its events in the caller's transaction; none commits.
Cases are read `FOR UPDATE` before any change so a request never overwrites what the SLA
scheduler (or another request) committed meanwhile. Every case publishes `case.*`;
complaint-type cases also publish the `complaint.*` events existing consumers know.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast

import asyncpg

from services.complaints import desk
from services.complaints import repository as repo
from services.complaints.config import Settings
from services.complaints.desk import OPEN_STATUSES, OUTCOME_STATUSES, REOPENABLE, Policy, Rule
from services.complaints.errors import (
    ActionNotFound,
    CaseNotFound,
    ComplaintNotFound,
    MissingField,
    NoAgentAvailable,
    NotRateable,
    ReopenWindowPassed,
    ResponseNotFound,
    ReturnWindowPassed,
    TransitionNotAllowed,
    TypeChangeNotAllowed,
)
from services.complaints.models import Action, Case, Note, Transition
from services.complaints.schemas import (
    ActionCreate,
    ActionUpdate,
    AgentUpsert,
    AssignmentRequest,
    CaseCreate,
    CaseNoteCreate,
    CaseTransitionRequest,
    CaseUpdate,
    ComplaintUpdate,
    RatingRequest,
)
from services.complaints.sla import SlaClock
from shared.audit import audit_json
from shared.context import RequestContext
from shared.contracts import cases as cev
from shared.contracts import complaints as ev
from shared.crypto import keyring
from shared.events.registry import EventContract
from shared.http import check_if_match

MANAGEMENT_LEVEL = 2
MANAGEMENT_QUEUE = "management"
OVERRIDE_SCOPE = "cases:override"
ReadT = TypeVar("ReadT")


def settings_of(ctx: RequestContext) -> Settings:
    return cast(Settings, ctx.settings)


# -- calendars and policies --------------------------------------------------------------------


def known_holidays(ctx: RequestContext) -> frozenset[date]:
    """The holidays this process read last (`load_holidays`; every case operation does)."""
    return cast(frozenset[date], getattr(ctx.app_state, "desk_holidays", frozenset()))


async def load_holidays(ctx: RequestContext) -> frozenset[date]:
    """Read the holidays in the caller's transaction; views of this request use them too."""
    days = frozenset(await repo.holiday_days(ctx.session))
    if ctx.app_state is not None:
        ctx.app_state.desk_holidays = days
    return days


def sla_clock(ctx: RequestContext, c: Case | None = None) -> SlaClock:
    """SLA time of the case's calendar (its policy's, else the service's), holidays skipped."""
    return SlaClock(settings_of(ctx), c.sla_calendar if c else None, known_holidays(ctx))


async def load_policies(ctx: RequestContext) -> list[Policy]:
    """The SLA policies in matching order: the list set by API, then the settings' matrix."""
    rows = await repo.sla_policies(ctx.session)
    listed = [
        Policy(
            name=r.name,
            type=r.type,
            subtype=r.subtype,
            severity=r.severity,
            tier=r.tier,
            channel=r.channel,
            first_response_s=r.first_response_s,
            resolution_s=r.resolution_s,
            pause_states=tuple(r.pause_states),
            calendar=r.calendar,
        )
        for r in rows
    ]
    return [*listed, *desk.default_policies(settings_of(ctx))]


def facts(c: Case) -> dict[str, Any]:
    """What policies and routing rules match on."""
    return {
        "type": c.type,
        "subtype": c.subtype,
        "severity": c.severity,
        "tier": c.tier,
        "channel": c.channel,
        "category": c.category,
    }


def apply_policy(ctx: RequestContext, c: Case, policies: Sequence[Policy], now: datetime) -> None:
    """Take targets, pause states and calendar from the first matching policy, then
    reschedule: deadlines move with the new targets, the time already paused is kept."""
    policy = desk.first_match(policies, facts(c))
    c.sla_policy = policy.name
    c.sla_calendar = policy.calendar
    c.pause_states = list(policy.pause_states)
    c.first_response_target_s = policy.first_response_s
    c.resolution_target_s = policy.resolution_s
    if c.paused_since is not None and c.status not in c.pause_states:
        _resume_clock(ctx, c, now)
    elif c.paused_since is None and c.status in c.pause_states:
        c.paused_since = now
    reschedule(ctx, c)


# -- SLA ---------------------------------------------------------------------------------------


def reschedule(ctx: RequestContext, c: Case) -> None:
    """Recompute deadlines (stored targets, pauses), the next check and the SLA status."""
    ratio = settings_of(ctx).sla_warning_ratio
    clock = sla_clock(ctx, c)
    first, resolution = c.first_response_target_s, c.resolution_target_s
    # Pauses only happen after the first response, so they move only the resolution
    # deadline; the first-response deadline stays what it was at receipt.
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


def remaining_seconds(ctx: RequestContext, c: Case, now: datetime) -> int | None:
    if c.status == "received":
        due = c.first_response_due_at
    elif c.status in OPEN_STATUSES:
        due = c.resolution_due_at
    else:
        return None
    ref = c.paused_since or now
    clock = sla_clock(ctx, c)
    if due >= ref:
        return int(clock.elapsed(ref, due))
    return -int(clock.elapsed(due, ref))


def case_fields(c: Case, now: datetime) -> dict[str, Any]:
    """What every `case.*` event starts with."""
    return {
        "customer_id": c.customer_id,
        "occurred_at": now,
        "case_id": c.id,
        "type": c.type,
        "subtype": c.subtype,
        "reference": c.reference,
    }


def complaint_fields(c: Case, now: datetime) -> dict[str, Any]:
    """What every `complaint.*` event starts with (complaint-type cases only)."""
    return {"customer_id": c.customer_id, "occurred_at": now, "complaint_id": c.id}


async def _escalate(
    ctx: RequestContext, c: Case, reason: Any, now: datetime, level: int | None = None
) -> list[EventContract]:
    """Raise the escalation level (by one, or to `level`) and move the work: level 1 to the
    team's lead (when the team has one), level 2 and up to the management queue."""
    c.escalation_level = c.escalation_level + 1 if level is None else max(level, c.escalation_level)
    if c.escalation_level >= MANAGEMENT_LEVEL:
        c.queue, c.assignee = MANAGEMENT_QUEUE, None
    elif c.team is not None:
        lead = await repo.team_lead(ctx.session, c.team)
        if lead is not None:
            c.assignee = lead
    events: list[EventContract] = []
    if c.type == "complaint":
        events.append(
            ev.ComplaintEscalated(
                **complaint_fields(c, now), reason=reason, level=c.escalation_level
            )
        )
    events.append(
        cev.CaseEscalated(
            **case_fields(c, now),
            reason=reason,
            level=c.escalation_level,
            assignee=c.assignee,
            queue=c.queue,
        )
    )
    return events


def _sla_events(
    c: Case, now: datetime, breached: bool, target: str, due_at: datetime
) -> list[EventContract]:
    old = ev.ComplaintSlaBreached if breached else ev.ComplaintSlaWarning
    new = cev.CaseSlaBreached if breached else cev.CaseSlaWarning
    events: list[EventContract] = []
    if c.type == "complaint":
        events.append(old(**complaint_fields(c, now), target=target, due_at=due_at))
    events.append(new(**case_fields(c, now), target=target, due_at=due_at))
    return events


async def check_sla(ctx: RequestContext, c: Case, now: datetime) -> list[EventContract]:
    """Warnings and breaches that fell due; each flag is set where its event is emitted."""
    events: list[EventContract] = []
    if c.first_response_at is None:
        if not c.first_response_warned and c.first_response_warn_at <= now:
            c.first_response_warned = True
            events += _sla_events(c, now, False, "first_response", c.first_response_due_at)
        if not c.first_response_breached and c.first_response_due_at <= now:
            c.first_response_breached = True
            events += _sla_events(c, now, True, "first_response", c.first_response_due_at)
            events += await _escalate(ctx, c, "sla_breach", now)
    if c.status in OPEN_STATUSES and c.paused_since is None:
        if not c.resolution_warned and c.resolution_warn_at <= now:
            c.resolution_warned = True
            events += _sla_events(c, now, False, "resolution", c.resolution_due_at)
        if not c.resolution_breached and c.resolution_due_at <= now:
            c.resolution_breached = True
            events += _sla_events(c, now, True, "resolution", c.resolution_due_at)
            events += await _escalate(ctx, c, "sla_breach", now)
    if events:
        c.version += 1
        c.updated_at = now
    reschedule(ctx, c)
    return events


async def run_sla_checks(ctx: RequestContext) -> int:
    """One scheduler pass: claim due cases (SKIP LOCKED), flag and publish what fell due."""
    now = ctx.now()
    await load_holidays(ctx)
    batch = settings_of(ctx).sla_scheduler_batch
    due = await repo.claim_due_sla_checks(ctx.session, now, batch)
    events: list[EventContract] = []
    for c in due:
        events.extend(await check_sla(ctx, c, now))
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, *events)
    return len(due)


# -- intake ------------------------------------------------------------------------------------


def _check_claim(ctx: RequestContext, data: CaseCreate, now: datetime) -> str | None:
    """A claim must come within the return window of delivery, unless a manager overrides
    (`cases:override`); returns who overrode it."""
    claim = data.claim
    if claim is None:
        return None
    window = settings_of(ctx).return_window_days
    if desk.within_window(claim.delivered_at, now, window):
        return None
    if not claim.override_return_window:
        days = (now - claim.delivered_at).total_seconds() / 86400
        raise ReturnWindowPassed(
            f"The claim comes {days:.1f} days after delivery; the return window is "
            f"{window:g} days (a manager can override it)",
            delivered_at=claim.delivered_at.isoformat(),
            return_window_days=window,
            days_since_delivery=round(days, 1),
        )
    ctx.require(OVERRIDE_SCOPE)
    return ctx.actor


async def _route(ctx: RequestContext, c: Case, now: datetime) -> list[EventContract]:
    """The first matching routing rule names the team; its least-loaded active member with
    the rule's skill gets the case, or it waits in the team's queue (`case.queued`)."""
    rules = [
        Rule(
            team=r.team,
            skill=r.skill,
            type=r.type,
            subtype=r.subtype,
            category=r.category,
            tier=r.tier,
        )
        for r in await repo.routing_rules(ctx.session)
    ]
    rule = desk.route(rules, facts(c))
    if rule is None:
        return []
    c.team = rule.team
    c.assignee = await repo.least_loaded_agent(ctx.session, rule.team, OPEN_STATUSES, rule.skill)
    if c.assignee is not None:
        return []
    return [cev.CaseQueued(**case_fields(c, now), team=rule.team, skill=rule.skill)]


@dataclass(frozen=True)
class DeskConfig:
    """The desk's configuration as intake matches it, and the version it was read at."""

    version: int
    policies: tuple[Policy, ...]  # in matching order: the listed ones, then the settings' matrix
    rules: tuple[Rule, ...]
    holidays: frozenset[date]


async def desk_config(ctx: RequestContext, conn: asyncpg.Connection, version: int) -> DeskConfig:
    """This process's copy of the SLA policies, routing rules and holidays, read again only
    when `version` (the `desk_config` row intake read in its first statement; triggers raise it
    in every transaction that changes any of them) differs from the copy's."""
    cached: DeskConfig | None = getattr(ctx.app_state, "desk_config", None)
    if cached is None or cached.version != version:
        row = await repo.desk_config(conn)
        cached = DeskConfig(
            version=row["version"],
            policies=(
                *(
                    Policy(**{**p, "pause_states": tuple(p["pause_states"])})
                    for p in row["policies"]
                ),
                *desk.default_policies(settings_of(ctx)),
            ),
            rules=tuple(Rule(**r) for r in row["rules"]),
            holidays=frozenset(row["holidays"]),
        )
        ctx.app_state.desk_config = cached
    # What `load_holidays` leaves for this request's views (and other requests').
    ctx.app_state.desk_holidays = cached.holidays
    return cached


def _sealed(c: Case) -> list[Any]:
    """The case's `repo.CASE_COLUMNS` as stored: personal data sealed, the calendar as JSON."""
    ring = keyring()
    values: list[Any] = []
    for name in repo.CASE_COLUMNS:
        value = getattr(c, name)
        if name in SEALED_COLUMNS and value is not None:
            value = ring.seal(value, f"complaints.{name}")
        elif name == "sla_calendar" and value is not None:
            value = json.dumps(value)
        values.append(value)
    return values


CASE_ATTRIBUTES = tuple(Case.__table__.columns.keys())


class CaseDraft:
    """A new case as a plain object that reads like a `Case` (every column, None unless
    given). Intake decides on it and writes it with one statement: it is never in a session,
    so it skips the ORM's bookkeeping of every attribute set (several times the cost of
    deciding the SLA)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(dict.fromkeys(CASE_ATTRIBUTES), **values)


SEALED_COLUMNS = frozenset(
    ("complainant_name", "complainant_email", "complainant_phone", "subject", "description")
)


async def register(
    ctx: RequestContext, data: CaseCreate, view: Callable[[Case], ReadT]
) -> tuple[Case, ReadT]:
    """Intake on the request's connection: one statement for what the database knows (the
    customer after merges, tier, erasure, the configuration's version), the policy, deadlines
    and routing from the cached configuration, then one statement that numbers the reference
    and writes the case, its transition, its events and its audit entry. The returned case
    is not in the session (nothing reads it back).

    `view` (the reply) is built before that last statement: the reference counter's row stays
    locked from it to the commit, and every intake of the type waits for it meanwhile (in a
    transaction, when the Idempotency-Key's row or a team's agents are locked too). The
    reference is not in the view: set it from the returned case if the view shows it."""
    now = ctx.now()
    overridden_by = _check_claim(ctx, data, now)
    # The case, its transition, events and audit entry are one statement, atomic by itself: with
    # no Idempotency-Key (whose claimed row must commit with the case) it runs in autocommit,
    # so no BEGIN and COMMIT round trips and the reference counter's row is locked for that
    # one statement only.
    keyed = ctx.in_transaction()  # not ctx.session: on the lazy context that makes one
    conn = await ctx.db(transaction=keyed)
    facts_row = await repo.intake_facts(conn, data.customer_id)
    config = await desk_config(ctx, conn, facts_row["config_version"])
    customer_id = facts_row["customer_id"]
    tier = facts_row["tier"] or settings_of(ctx).default_tier
    claim = data.claim
    draft = CaseDraft(
        id=uuid.uuid4(),
        type=data.type,
        subtype=data.subtype,
        reference="",  # numbered by the statement that writes the case
        customer_id=customer_id,
        channel=data.channel,
        category=data.category,
        severity=data.severity,
        status="received",
        tier=tier,
        complainant_name=data.contact.name,
        complainant_email=data.contact.email,
        complainant_phone=data.contact.phone,
        subject=data.subject,
        description=data.description,
        related_purchase_id=data.related_purchase_id or (claim.purchase_id if claim else None),
        related_interaction_id=data.related_interaction_id,
        claim_kind=claim.kind if claim else None,
        amount_claimed=claim.amount if claim else None,
        currency=claim.currency if claim else None,
        delivered_at=claim.delivered_at if claim else None,
        return_window_days=int(settings_of(ctx).return_window_days) if claim else None,
        window_overridden_by=overridden_by,
        escalation_level=0,
        critical_escalated=False,
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
    c = cast(Case, draft)  # reads and is changed like one, see `CaseDraft`
    if facts_row["erased"]:
        # The erasure was processed first; it wins whatever the order of arrival.
        scrub(c, now)
    apply_policy(ctx, c, config.policies, now)
    rule = None if data.assignee or data.team else desk.route(config.rules, facts(c))
    team = data.team or (rule.team if rule else None)
    # Picking a team's least-loaded agent locks the team's agents until the case is written.
    atomic = conn.transaction() if team is not None and not keyed else contextlib.nullcontext()
    async with atomic:
        routed: list[EventContract] = []
        if data.assignee:
            c.assignee = data.assignee
        elif team is not None:
            c.team = team
            skill = rule.skill if rule else None
            c.assignee = await repo.least_loaded_agent_on(conn, team, OPEN_STATUSES, skill)
            if c.assignee is None and rule is None:
                raise NoAgentAvailable(f"Team {team} has no active agent", team=team)
            if c.assignee is None:
                routed.append(cev.CaseQueued(**case_fields(c, now), team=team, skill=skill))
        events = _received(c, now) + routed
        if c.type == "complaint" and (c.assignee or c.team):
            events.append(_assigned(c, now))
        if data.severity == "critical":
            c.critical_escalated = True
            events += await _escalate(ctx, c, "critical_intake", now, MANAGEMENT_LEVEL)
        audit = ctx.change_entries(
            "create", "complaint", c.id, c.customer_id, data.model_dump(exclude_none=True)
        )
        read = view(c)
        c.reference = await repo.register_row(
            conn,
            _sealed(c),
            ctx.actor,
            now,
            json.dumps([ctx.outbox.row(e) for e in events], default=str),
            audit_json(audit),
            desk.REFERENCE_PREFIX[data.type],
            now.year,
        )
    ctx.wake_relay(at_commit=keyed)  # else committed: by the statement, or by `atomic`
    return c, read


def _received(c: Case, now: datetime) -> list[EventContract]:
    events: list[EventContract] = []
    if c.type == "complaint":
        events.append(
            ev.ComplaintReceived(
                **complaint_fields(c, now),
                channel=c.channel,
                category=c.category,
                severity=c.severity,
                first_response_due_at=c.first_response_due_at,
                resolution_due_at=c.resolution_due_at,
            )
        )
    events.append(
        cev.CaseReceived(
            **case_fields(c, now),
            channel=c.channel,
            category=c.category,
            severity=c.severity,
            sla_policy=c.sla_policy,
            first_response_due_at=c.first_response_due_at,
            resolution_due_at=c.resolution_due_at,
            team=c.team,
            assignee=c.assignee,
        )
    )
    return events


def scrub(c: Case, now: datetime) -> None:
    """Drop the contact's personal data and free text; keep type, timings, ratings."""
    c.complainant_name = c.complainant_email = c.complainant_phone = None
    c.subject = c.description = c.root_cause = c.resolution = c.rating_comment = None
    c.erased_at = now


async def _audit(ctx: RequestContext, action: str, c: Case, fields: Iterable[str]) -> None:
    await ctx.audit_change(action, "complaint", c.id, c.customer_id, fields)


# -- reads -------------------------------------------------------------------------------------


async def get(
    ctx: RequestContext, case_id: uuid.UUID, *, lock: bool = False, kind: str | None = None
) -> Case:
    """The case (of type `kind` when given: `/complaints` sees only complaints)."""
    c = await repo.get(ctx.session, case_id, lock=lock)
    if c is None or (kind is not None and c.type != kind):
        if kind == "complaint":
            raise ComplaintNotFound(f"Complaint {case_id} does not exist")
        raise CaseNotFound(f"Case {case_id} does not exist")
    return c


async def read(ctx: RequestContext, case_id: uuid.UUID, kind: str | None = None) -> Case:
    """The case; an unmasked read of its personal data is audited."""
    await load_holidays(ctx)
    c = await get(ctx, case_id, kind=kind)
    await ctx.audit_reads([("complaint", c, c.customer_id)])
    return c


async def queue(
    ctx: RequestContext, filters: repo.QueueFilter, cursor: str | None, limit: int
) -> tuple[list[Case], str | None]:
    await load_holidays(ctx)
    items, next_cursor = await repo.queue(ctx.session, filters, cursor, limit)
    await ctx.audit_reads([("complaint", c, c.customer_id) for c in items])
    return items, next_cursor


async def history(
    ctx: RequestContext, case_id: uuid.UUID, kind: str | None = None
) -> Sequence[Transition]:
    c = await get(ctx, case_id, kind=kind)
    rows = await repo.transitions(ctx.session, case_id)
    await ctx.audit_reads([("complaint_transition", t, c.customer_id) for t in rows])
    return rows


async def notes(ctx: RequestContext, case_id: uuid.UUID, kind: str | None = None) -> Sequence[Note]:
    c = await get(ctx, case_id, kind=kind)
    rows = await repo.notes(ctx.session, case_id)
    await ctx.audit_reads([("complaint_note", n, c.customer_id) for n in rows])
    return rows


async def actions(
    ctx: RequestContext, case_id: uuid.UUID, kind: str | None = None
) -> Sequence[Action]:
    c = await get(ctx, case_id, kind=kind)
    rows = await repo.actions(ctx.session, case_id)
    await ctx.audit_reads([("complaint_action", a, c.customer_id) for a in rows])
    return rows


# -- lifecycle ---------------------------------------------------------------------------------


def allowed_moves(ctx: RequestContext, c: Case, now: datetime) -> list[str]:
    moves = list(desk.lifecycle(c.type)[c.status])
    if (
        c.status in REOPENABLE
        and "investigating" in moves
        and not _within_reopen_window(ctx, c, now)
    ):
        moves.remove("investigating")
    return moves


def _within_reopen_window(ctx: RequestContext, c: Case, now: datetime) -> bool:
    resolved_at = c.resolved_at or c.updated_at
    return now - resolved_at <= timedelta(days=settings_of(ctx).reopen_window_days)


def _resume_clock(ctx: RequestContext, c: Case, now: datetime) -> None:
    if c.paused_since is not None:
        clock = sla_clock(ctx, c)
        c.paused_seconds = (c.paused_seconds or 0.0) + clock.elapsed(c.paused_since, now)
        c.paused_since = None


def _revisits(ctx: RequestContext, c: Case) -> bool:
    return c.type in settings_of(ctx).revisit_types


def _check_move(ctx: RequestContext, c: Case, req: CaseTransitionRequest, now: datetime) -> None:
    """Refuse a move the case's lifecycle does not allow, or that lacks what it needs."""
    current, target = c.status, req.to_status
    if target not in desk.lifecycle(c.type)[current]:
        raise TransitionNotAllowed(
            f"A {current} {desk.TYPE_NAMES[c.type]} cannot move to {target}",
            current_status=current,
            requested=target,
            allowed=allowed_moves(ctx, c, now),
        )
    if (
        current in REOPENABLE
        and target == "investigating"
        and not _within_reopen_window(ctx, c, now)
    ):
        raise ReopenWindowPassed(
            f"The case can be reopened only within {settings_of(ctx).reopen_window_days:g} "
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
    if target == "closed" and _revisits(ctx, c) and not (req.revisit_outcome or c.revisit_outcome):
        raise MissingField(
            "Closing records the revisit's outcome (send `revisit_outcome`)",
            field="revisit_outcome",
        )


async def transition(
    ctx: RequestContext,
    case_id: uuid.UUID,
    req: CaseTransitionRequest,
    if_match: str | None = None,
    kind: str | None = None,
) -> Case:
    """Move the case to `req.to_status`; `if_match` is checked when given."""
    await load_holidays(ctx)
    c = await get(ctx, case_id, lock=True, kind=kind)
    if if_match is not None:
        check_if_match(if_match, c.version)
    now = ctx.now()
    _check_move(ctx, c, req, now)
    events = await _move(ctx, c, req, now)
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, *events)
    await _audit(ctx, "update", c, ["status", *req.model_dump(exclude_none=True)])
    return c


async def _move(
    ctx: RequestContext, c: Case, req: CaseTransitionRequest, now: datetime
) -> list[EventContract]:
    """Apply a checked move: clocks, timestamps, the state, its history row and events."""
    current, target = c.status, req.to_status
    reopening = current in REOPENABLE and target == "investigating"
    clock = sla_clock(ctx, c)
    complaint = c.type == "complaint"
    base = complaint_fields(c, now)
    events: list[EventContract] = []
    if complaint:
        events.append(
            ev.ComplaintStatusChanged(
                **base,
                from_status=current,
                to_status=target,
                actor_id=ctx.actor,
            )
        )
    events.append(
        cev.CaseStatusChanged(
            **case_fields(c, now),
            from_status=current,
            to_status=target,
            actor_id=ctx.actor,
        )
    )
    if current in c.pause_states and target not in c.pause_states:
        _resume_clock(ctx, c, now)
    if target in c.pause_states and c.paused_since is None:
        c.paused_since = now
    if target == "acknowledged":
        c.first_response_at = now
        seconds = clock.elapsed(c.received_at, now)
        met = seconds <= c.first_response_target_s and not c.first_response_breached
        if complaint:
            events.append(
                ev.ComplaintAcknowledged(
                    **base, first_response_seconds=int(seconds), first_response_met=met
                )
            )
        events.append(
            cev.CaseAcknowledged(
                **case_fields(c, now),
                first_response_seconds=int(seconds),
                first_response_met=met,
                resolution_due_at=c.resolution_due_at,
            )
        )
    elif target in OUTCOME_STATUSES:
        events += _reach_outcome(ctx, c, req, now)
    elif target == "closed":
        c.closed_at = now
        c.revisit_outcome = req.revisit_outcome or c.revisit_outcome
        if complaint:
            events.append(ev.ComplaintClosed(**base, revisit_outcome=c.revisit_outcome))
        events.append(cev.CaseClosed(**case_fields(c, now), revisit_outcome=c.revisit_outcome))
    elif reopening:
        # The clock stood still while the case was resolved; it runs again from here.
        assert c.resolved_at is not None
        c.paused_seconds = (c.paused_seconds or 0.0) + clock.elapsed(c.resolved_at, now)
        c.resolved_at = c.closed_at = c.revisit_due_at = None
        c.revisit_outcome = c.outcome = None
        c.revisit_followup_id = None
        c.reopen_count += 1
        if complaint:
            events.append(ev.ComplaintReopened(**base))
        events.append(cev.CaseReopened(**case_fields(c, now)))

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
    # A pass over the clock right away: a reopened case may already be overdue.
    if reopening:
        events += await check_sla(ctx, c, now)
    return events


def _reach_outcome(
    ctx: RequestContext, c: Case, req: CaseTransitionRequest, now: datetime
) -> list[EventContract]:
    """Resolved (or a suggestion accepted or declined): the notice and the revisit."""
    clock = sla_clock(ctx, c)
    c.resolved_at = now
    c.outcome = req.outcome or desk.default_outcome(c.type, req.to_status)
    if _revisits(ctx, c):
        c.revisit_due_at = now + timedelta(days=settings_of(ctx).revisit_after_days)
    seconds = max(clock.elapsed(c.received_at, now) - (c.paused_seconds or 0.0), 0.0)
    met = seconds <= c.resolution_target_s and not c.resolution_breached
    events: list[EventContract] = []
    if c.type == "complaint":
        events.append(
            ev.ComplaintResolved(
                **complaint_fields(c, now),
                category=c.category,
                severity=c.severity,
                root_cause=c.root_cause_category,
                resolution_seconds=int(seconds),
                resolution_met=met,
            )
        )
    events.append(
        cev.CaseResolved(
            **case_fields(c, now),
            status=req.to_status,
            outcome=c.outcome,
            outcome_summary=desk.outcome_summary(c.type, c.reference, req.to_status, c.outcome),
            resolution_seconds=int(seconds),
            resolution_met=met,
            owner_id=c.assignee,
            revisit_due_at=c.revisit_due_at,
        )
    )
    return events


async def update(
    ctx: RequestContext,
    case_id: uuid.UUID,
    data: CaseUpdate | ComplaintUpdate,
    if_match: str | None,
    kind: str | None = None,
) -> Case:
    """Change details of the version the caller read (`if_match`, required). A change of
    type, subtype or severity re-applies the SLA policies; raising the severity to critical
    escalates to management, once in a case's life."""
    await load_holidays(ctx)
    c = await get(ctx, case_id, lock=True, kind=kind)
    check_if_match(if_match, c.version)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise MissingField(f"`{name}` cannot be cleared", field=name)
    _check_retype(c, changes)
    for name, value in changes.items():
        setattr(c, name, value)
    if c.type != "service_request":
        c.subtype = None
    events: list[EventContract] = []
    if changes:
        now = ctx.now()
        c.version += 1
        c.updated_at = now
        if {"severity", "type", "subtype"} & changes.keys():
            apply_policy(ctx, c, await load_policies(ctx), now)
        raised = changes.get("severity") == "critical" and not c.critical_escalated
        if raised and c.status in OPEN_STATUSES:
            c.critical_escalated = True
            events += await _escalate(ctx, c, "critical_raised", now, MANAGEMENT_LEVEL)
        await ctx.session.flush()
        await ctx.outbox.emit(ctx.session, *events)
    await _audit(ctx, "update", c, changes)
    return c


def _check_retype(c: Case, changes: dict[str, Any]) -> None:
    new_type = changes.get("type", c.type)
    if new_type != c.type and "claim" in (new_type, c.type):
        raise TypeChangeNotAllowed(
            "A claim cannot become another type, nor another type a claim (its purchase, "
            "amount and return window are checked at intake)",
            field="type",
        )
    if new_type == "suggestion" and c.status not in ("received", "acknowledged"):
        raise TypeChangeNotAllowed(f"A {c.status} case cannot become a suggestion", field="type")
    if new_type == "service_request" and changes.get("subtype", c.subtype) is None:
        raise MissingField("A service request needs a `subtype`", field="subtype")
    if "subtype" in changes and new_type != "service_request":
        raise MissingField("Only service requests have a subtype", field="subtype")


async def escalate(
    ctx: RequestContext, case_id: uuid.UUID, note: str | None, kind: str | None = None
) -> Case:
    c = await get(ctx, case_id, lock=True, kind=kind)
    now = ctx.now()
    events = await _escalate(ctx, c, "manual", now)
    c.version += 1
    c.updated_at = now
    ctx.session.add(
        Note(id=uuid.uuid4(), complaint_id=c.id, author=ctx.actor, body=note, created_at=now)
    )
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, *events)
    fields = ["escalation_level", "assignee", "queue", *(["note"] if note else [])]
    await _audit(ctx, "update", c, fields)
    return c


async def rate(
    ctx: RequestContext, case_id: uuid.UUID, data: RatingRequest, kind: str | None = None
) -> Case:
    """The customer's satisfaction with the outcome, for a case of any type."""
    c = await get(ctx, case_id, lock=True, kind=kind)
    if c.status not in (*OUTCOME_STATUSES, "closed"):
        raise NotRateable(
            f"Only cases with an outcome can be rated; this one is {c.status}",
            current_status=c.status,
        )
    now = ctx.now()
    c.rating, c.rating_comment, c.rated_at = data.rating, data.comment, now
    c.version += 1
    c.updated_at = now
    await ctx.session.flush()
    events: list[EventContract] = []
    if c.type == "complaint":
        events.append(ev.ComplaintRated(**complaint_fields(c, now), rating=data.rating))
    events.append(cev.CaseRated(**case_fields(c, now), rating=data.rating))
    await ctx.outbox.emit(ctx.session, *events)
    await _audit(ctx, "update", c, data.model_dump(exclude_none=True))
    return c


# -- the revisit (a follow-up in interactions) -------------------------------------------------


async def revisit_done(
    ctx: RequestContext, case_id: uuid.UUID, followup_id: uuid.UUID, outcome: str
) -> None:
    """The revisit follow-up was completed in interactions: record its outcome on the case
    and close the case if it still stands at its outcome (a reopened case stays open)."""
    c = await repo.get(ctx.session, case_id, lock=True)
    if c is None or c.status not in (*OUTCOME_STATUSES, "closed"):
        return
    now = ctx.now()
    await load_holidays(ctx)
    c.revisit_outcome = outcome
    c.revisit_followup_id = followup_id
    c.version += 1
    c.updated_at = now
    events: list[EventContract] = [
        cev.CaseRevisited(**case_fields(c, now), revisit_outcome=outcome, followup_id=followup_id)
    ]
    if c.status != "closed":
        req = CaseTransitionRequest(to_status="closed", revisit_outcome=outcome)
        events += await _move(ctx, c, req, now)
    await ctx.session.flush()
    await ctx.outbox.emit(ctx.session, *events)
    await _audit(ctx, "update", c, ["revisit_outcome", "status"])


# -- notes and actions -------------------------------------------------------------------------


async def add_note(
    ctx: RequestContext, case_id: uuid.UUID, data: CaseNoteCreate, kind: str | None = None
) -> Note:
    """A note by the caller: its text, a canned response's, or the response then the text."""
    c = await get(ctx, case_id, kind=kind)
    parts: list[str] = []
    if data.response_id is not None:
        response = await repo.canned_response(ctx.session, data.response_id)
        if response is None:
            raise ResponseNotFound(f"Canned response {data.response_id} does not exist")
        parts.append(response.body)
    if data.body:
        parts.append(data.body)
    note = Note(
        id=uuid.uuid4(),
        complaint_id=c.id,
        author=ctx.actor,
        body="\n\n".join(parts),
        created_at=ctx.now(),
    )
    ctx.session.add(note)
    await ctx.session.flush()
    await ctx.audit_change("create", "complaint_note", note.id, c.customer_id, ["body"])
    return note


async def add_action(
    ctx: RequestContext, case_id: uuid.UUID, data: ActionCreate, kind: str | None = None
) -> Action:
    c = await get(ctx, case_id, kind=kind)
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
    ctx: RequestContext,
    case_id: uuid.UUID,
    action_id: uuid.UUID,
    data: ActionUpdate,
    kind: str | None = None,
) -> Action:
    c = await get(ctx, case_id, kind=kind)
    action = await repo.get_action(ctx.session, case_id, action_id)
    if action is None:
        raise ActionNotFound(f"Action {action_id} of case {case_id} does not exist")
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name != "due_date":
            raise MissingField(f"`{name}` cannot be cleared", field=name)
        setattr(action, name, value)
    action.updated_at = ctx.now()
    await ctx.session.flush()
    await ctx.audit_change("update", "complaint_action", action.id, c.customer_id, changes)
    return action


# -- assignment --------------------------------------------------------------------------------


async def _least_loaded_agent(ctx: RequestContext, team: str) -> str:
    agent = await repo.least_loaded_agent(ctx.session, team, OPEN_STATUSES)
    if agent is None:
        raise NoAgentAvailable(f"Team {team} has no active agent", team=team)
    return agent


async def assign(
    ctx: RequestContext, case_id: uuid.UUID, req: AssignmentRequest, kind: str | None = None
) -> Case:
    """Give the case to an agent (or the team's least-loaded one); it leaves any queue."""
    await load_holidays(ctx)
    c = await get(ctx, case_id, lock=True, kind=kind)
    if req.team is not None:
        c.team = req.team
        c.assignee = await _least_loaded_agent(ctx, req.team)
    else:
        assert req.assignee is not None
        agent = await repo.agent(ctx.session, req.assignee)
        c.assignee = req.assignee
        c.team = agent.team if agent is not None else None
    c.queue = None
    c.version += 1
    c.updated_at = ctx.now()
    await ctx.session.flush()
    if c.type == "complaint":
        await ctx.outbox.emit(ctx.session, _assigned(c, c.updated_at))
    await _audit(ctx, "update", c, ["assignee", "team", "queue"])
    return c


def _assigned(c: Case, at: datetime) -> ev.ComplaintAssigned:
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
    """A tier change: the open cases of the customer follow the policies of the new tier."""
    open_cases = await repo.open_of_customer(ctx.session, customer_id, OPEN_STATUSES)
    now = ctx.now()
    changed = [c for c in open_cases if c.tier != tier]
    if changed:
        await load_holidays(ctx)
        policies = await load_policies(ctx)
        for c in changed:
            c.tier = tier
            c.version += 1
            c.updated_at = now
            apply_policy(ctx, c, policies, now)
    await ctx.session.flush()
    return len(open_cases)


async def tier_changed(
    ctx: RequestContext, customer_id: uuid.UUID, tier: str, as_of: datetime
) -> None:
    if await repo.record_tier(ctx.session, customer_id, tier, as_of):  # newer than we knew
        await retarget_customer(ctx, customer_id, tier)


async def merge_customers(ctx: RequestContext, survivor: uuid.UUID, duplicate: uuid.UUID) -> None:
    """The duplicate's cases, now and later, belong to the survivor."""
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
