"""Business rules: every change and its events in the caller's transaction."""

from __future__ import annotations

import calendar
import contextlib
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from types import SimpleNamespace
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.interactions import repository as repo
from services.interactions import schemas
from services.interactions.config import Settings
from services.interactions.errors import (
    Conflict,
    InvalidTransition,
    MissingExchangeRate,
    NotFound,
    PurchaseRefConflict,
    RefundExceedsPurchase,
    SurveySuppressed,
)
from services.interactions.models import (
    CustomerState,
    Followup,
    Interaction,
    Model,
    Purchase,
    Refund,
    Survey,
    SurveyInvitation,
)
from shared.audit import audit_json
from shared.context import RequestContext
from shared.contracts.interactions import (
    FollowupCancelled,
    FollowupCompleted,
    FollowupOverdue,
    FollowupScheduled,
    InteractionLogged,
    PurchaseCancelled,
    PurchaseRecorded,
    PurchaseRefunded,
    SurveyInvited,
    SurveySubmitted,
)
from shared.crypto import keyring
from shared.problems import Unprocessable

CENT = Decimal("0.0001")
PURCHASE_FLOW = {"placed": 0, "paid": 1, "delivered": 2}


def settings_of(ctx: RequestContext) -> Settings:
    """The context's settings as this service's own (the cadence, the schedulers)."""
    settings: Settings = ctx.settings  # type: ignore[assignment]
    return settings


def _writable(survivor: uuid.UUID, erased: datetime | None) -> uuid.UUID:
    """The survivor, unless erased: no new contact records are kept for an erased customer."""
    if erased is not None:
        raise Conflict(
            "The customer's personal data was erased; no new contact records are kept",
            customer_id=str(survivor),
        )
    return survivor


async def _writable_customer(ctx: RequestContext, customer_id: uuid.UUID) -> uuid.UUID:
    """The survivor of `customer_id`; refuses new contact records for an erased customer."""
    return _writable(*await repo.customer_status(ctx.session, customer_id))


async def _writable_customer_on(conn: asyncpg.Connection, customer_id: uuid.UUID) -> uuid.UUID:
    """`_writable_customer` on the hot writes' bare connection (one connection per request)."""
    return _writable(*await repo.customer_status_on(conn, customer_id))


async def _insert(ctx: RequestContext, record: Model) -> None:
    """One Core INSERT of a fully built record (the write path skips the ORM unit of work)."""
    model = type(record)
    values = {attr.key: getattr(record, attr.key) for attr in sa.inspect(model).column_attrs}
    await ctx.session.execute(sa.insert(model).values(values))


async def _audit(
    ctx: RequestContext, action: str, resource: str, record: Any, fields: Any = ()
) -> None:
    """The change's audit entry, in the same transaction as the change."""
    await ctx.audit_change(action, resource, record.id, record.customer_id, fields)


# -- interactions -------------------------------------------------------------------------------


async def log_interaction(
    ctx: RequestContext, data: schemas.InteractionCreate
) -> schemas.InteractionRead:
    """The interaction, its event, its audit entry and (for an answered contact) the customer's
    contact state and closed planned revisits, in one statement on the request's connection;
    the unmasked read model, built from the inputs.

    Without an Idempotency-Key (whose claimed row must commit with the interaction) that one
    statement runs in autocommit: atomic by itself, no BEGIN and COMMIT round trips. A write
    that takes more statements (a merged customer resolved first, or a closed revisit's
    events) runs in a transaction: the autocommitted statement refuses it, writing nothing."""
    values = data.model_dump(exclude={"customer_id"})
    answered = data.outcome != "no_answer"
    settings = settings_of(ctx)
    now = ctx.now()
    interaction_id = uuid.uuid4()
    ring = keyring()
    sealed = {
        name: None if values[name] is None else ring.seal(values[name], f"interactions.{name}")
        for name in ("contact_person", "subject", "summary")
    }
    fields = [name for name, value in data if value is not None]
    keyed = ctx.in_transaction()
    conn = await ctx.db(transaction=keyed)

    async def write(customer_id: uuid.UUID, resolved: bool, alone: bool) -> list[Any]:
        event = InteractionLogged(
            customer_id=customer_id,
            occurred_at=data.occurred_at,
            interaction_id=interaction_id,
            channel=data.channel,
            direction=data.direction,
            outcome=data.outcome,
            agent_id=data.agent_id,
            duration_seconds=data.duration_seconds,
        )
        audit = ctx.change_entries("create", "interaction", interaction_id, customer_id, fields)
        return await repo.log_interaction_rows(
            conn,
            interaction_id,
            customer_id,
            sealed["contact_person"],
            data.channel,
            data.direction,
            data.occurred_at,
            data.duration_seconds,
            sealed["subject"],
            sealed["summary"],
            data.outcome,
            data.agent_id,
            data.need_id,
            data.purchase_id,
            data.complaint_id,
            now,
            answered,
            resolved,
            data.occurred_at + timedelta(days=settings.cadence_days(None)),
            settings.cadence_a_days,
            settings.cadence_b_days,
            settings.cadence_c_days,
            settings.cadence_days(None),
            json.dumps([ctx.outbox.row(event)], default=str),
            audit_json(audit),
            alone,
        )

    async def close_revisits(customer_id: uuid.UUID, rows: list[Any]) -> None:
        completed = [
            FollowupCompleted(
                customer_id=customer_id,
                occurred_at=now,
                followup_id=row["id"],
                kind=row["kind"],
                due_at=row["due_at"],
                assignee_id=row["assignee_id"],
                interaction_id=interaction_id,
            )
            for row in rows
            if row["found"] == "revisit"
        ]
        if completed:
            await repo.insert_events(
                conn, json.dumps([ctx.outbox.row(e) for e in completed], default=str)
            )

    customer_id = data.customer_id
    rows = await write(customer_id, resolved=False, alone=not keyed)
    if rows:
        await close_revisits(customer_id, rows)  # none closed when autocommitted alone
    else:
        # Nothing written: a merged customer (its survivor), an erased one (409), or a revisit
        # to close. More than one statement, so in a transaction (the request's, when keyed).
        async with contextlib.nullcontext() if keyed else conn.transaction():
            customer_id = await _writable_customer_on(conn, customer_id)
            rows = await write(customer_id, resolved=True, alone=False)
            await close_revisits(customer_id, rows)
    ctx.wake_relay(at_commit=keyed)  # else committed: by the statement, or its transaction
    return schemas.InteractionRead.model_validate(
        {
            **values,
            "id": interaction_id,
            "customer_id": customer_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
    )


async def get_interaction(
    ctx: RequestContext, interaction_id: uuid.UUID, *, lock: bool = False
) -> Interaction:
    interaction = await repo.get(ctx.session, Interaction, interaction_id, lock=lock)
    if interaction is None:
        raise NotFound(f"Interaction {interaction_id} does not exist")
    return interaction


async def correct_interaction(
    ctx: RequestContext, interaction: Interaction, data: schemas.InteractionUpdate
) -> Interaction:
    """Apply a correction. The log keeps its original event: corrections publish nothing."""
    changes = data.model_dump(exclude_unset=True)
    personal = {"contact_person", "subject", "summary"}
    if any(changes.get(name) is not None for name in personal):
        await _writable_customer(ctx, interaction.customer_id)  # no new text once erased
    for name, value in changes.items():
        setattr(interaction, name, value)
    if changes:
        interaction.version += 1
        interaction.updated_at = ctx.now()
        await ctx.session.flush()
        if {"occurred_at", "outcome"} & changes.keys():
            await repo.refresh_contact(ctx.session, settings_of(ctx), [interaction.customer_id])
    await _audit(ctx, "update", "interaction", interaction, changes)
    return interaction


# -- follow-ups ---------------------------------------------------------------------------------


def _followup_fields(f: Followup) -> dict[str, Any]:
    return {
        "customer_id": f.customer_id,
        "followup_id": f.id,
        "kind": f.kind,
        "due_at": f.due_at,
        "assignee_id": f.assignee_id,
        "case_id": f.case_id,
    }


async def schedule_followup(ctx: RequestContext, data: schemas.FollowupCreate) -> Followup:
    customer_id = await _writable_customer(ctx, data.customer_id)
    now = ctx.now()
    followup = Followup(
        id=uuid.uuid4(),
        **data.model_dump(exclude={"customer_id"}),
        customer_id=customer_id,
        status="open",
        origin="manual",
        version=1,
        created_at=now,
        updated_at=now,
    )
    await _insert(ctx, followup)
    await ctx.outbox.emit(
        ctx.session, FollowupScheduled(occurred_at=now, **_followup_fields(followup))
    )
    await _audit(ctx, "create", "followup", followup, data.model_dump(exclude_none=True))
    return followup


async def get_followup(
    ctx: RequestContext, followup_id: uuid.UUID, *, lock: bool = False
) -> Followup:
    followup = await repo.get(ctx.session, Followup, followup_id, lock=lock)
    if followup is None:
        raise NotFound(f"Follow-up {followup_id} does not exist")
    return followup


def _require_open(followup: Followup, action: str) -> None:
    if followup.status != "open":
        raise InvalidTransition(
            f"A {followup.status} follow-up cannot be {action}", current_status=followup.status
        )


async def update_followup(
    ctx: RequestContext, followup: Followup, data: schemas.FollowupUpdate
) -> Followup:
    """Reschedule/reassign; a new due time is announced again and may go overdue again."""
    _require_open(followup, "changed")
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        setattr(followup, name, value)
    if changes:
        followup.version += 1
        followup.updated_at = ctx.now()
        if "due_at" in changes or "assignee_id" in changes:
            followup.overdue_notified_at = None
            await ctx.outbox.emit(
                ctx.session,
                FollowupScheduled(occurred_at=followup.updated_at, **_followup_fields(followup)),
            )
        await ctx.session.flush()
    await _audit(ctx, "update", "followup", followup, changes)
    return followup


async def complete_followup(
    ctx: RequestContext, followup: Followup, data: schemas.FollowupComplete
) -> Followup:
    _require_open(followup, "completed")
    if followup.case_id is not None and data.revisit_outcome is None:
        raise Unprocessable(
            "A case's revisit records how the customer found the outcome: send revisit_outcome",
            errors=[
                {
                    "field": "body.revisit_outcome",
                    "message": "required to complete the revisit of a case",
                    "type": "missing",
                }
            ],
        )
    if data.interaction_id is not None:
        interaction = await repo.get(ctx.session, Interaction, data.interaction_id)
        if interaction is None or interaction.customer_id != followup.customer_id:
            raise Unprocessable(
                "interaction_id must name an interaction with the same customer",
                errors=[
                    {
                        "field": "body.interaction_id",
                        "message": "no such interaction for this customer",
                        "type": "value_error",
                    }
                ],
            )
    now = ctx.now()
    followup.status = "done"
    followup.completed_at = now
    followup.interaction_id = data.interaction_id
    followup.revisit_outcome = data.revisit_outcome
    followup.version += 1
    followup.updated_at = now
    await ctx.session.flush()
    await ctx.outbox.emit(
        ctx.session,
        FollowupCompleted(
            occurred_at=now,
            interaction_id=data.interaction_id,
            revisit_outcome=data.revisit_outcome,
            **_followup_fields(followup),
        ),
    )
    await _audit(
        ctx, "update", "followup", followup, ["status", *data.model_dump(exclude_unset=True)]
    )
    return followup


async def cancel_followup(ctx: RequestContext, followup: Followup) -> Followup:
    _require_open(followup, "cancelled")
    followup.status = "cancelled"
    followup.version += 1
    followup.updated_at = ctx.now()
    await ctx.session.flush()
    await ctx.outbox.emit(
        ctx.session,
        FollowupCancelled(occurred_at=followup.updated_at, **_followup_fields(followup)),
    )
    await _audit(ctx, "update", "followup", followup, ["status"])
    return followup


# -- cadence ------------------------------------------------------------------------------------


async def set_cadence(
    ctx: RequestContext, customer_id: uuid.UUID, days: int | None
) -> CustomerState:
    survivor = await repo.resolve_customer(ctx.session, customer_id)
    state = await repo.lock_state(ctx.session, survivor)
    state.cadence_days_override = days
    await ctx.session.flush()
    await repo.refresh_next_revisit(ctx.session, settings_of(ctx), [survivor])
    await ctx.session.refresh(state)
    await ctx.audit_change("update", "cadence", customer_id, customer_id, ["cadence_days"])
    return state


async def cadence_state(ctx: RequestContext, customer_id: uuid.UUID) -> CustomerState:
    customer_id = await repo.resolve_customer(ctx.session, customer_id)
    state = await repo.state_of(ctx.session, customer_id)
    return state or CustomerState(customer_id=customer_id)


# -- purchases ----------------------------------------------------------------------------------


RATE_PLACES = Decimal("0.00000001")  # as stored (numeric(18, 8)), so events equal reads


async def fx_rate(
    ctx: RequestContext, currency: str, at: datetime, conn: asyncpg.Connection | None = None
) -> tuple[str, Decimal]:
    """(reporting currency, rate) for `currency` on the UTC date of `at`; 422 without one.
    Read on `conn`, or on the request's transaction."""
    reporting = ctx.settings.reporting_currency
    if currency == reporting:
        return reporting, Decimal(1).quantize(RATE_PLACES)
    day = at.astimezone(UTC).date()
    rate = await repo.rate_on(conn or await ctx.db(), currency, reporting, day)
    if rate is None:
        raise MissingExchangeRate(
            f"No exchange rate from {currency} to {reporting} for {day.isoformat()}: an admin "
            "sets it with PUT /fx-rates",
            currency=currency,
            date=day.isoformat(),
            reporting_currency=reporting,
            errors=[
                {
                    "field": "body.currency",
                    "message": f"no {currency} rate for {day.isoformat()}",
                    "type": "missing_exchange_rate",
                }
            ],
        )
    return reporting, rate.quantize(RATE_PLACES)


def converted(value: Decimal, rate: Decimal) -> Decimal:
    return (value * rate).quantize(CENT, ROUND_HALF_EVEN)


async def put_fx_rates(ctx: RequestContext, data: schemas.FxRatesPut) -> list[Any]:
    """Set each rate (replacing that currency's rate for that day); the rates as stored."""
    reporting = ctx.settings.reporting_currency
    rows = {
        (r.currency, r.date): {
            "currency": r.currency,
            "reporting_currency": reporting,
            "rate_date": r.date,
            "rate": r.rate,
            "updated_at": ctx.now(),
            "updated_by": ctx.actor,
        }
        for r in data.rates
        if r.currency != reporting
    }
    await ctx.audit_change("update", "fx_rate", fields=["rate"])
    return await repo.upsert_rates(ctx.session, list(rows.values()))


async def record_purchase(ctx: RequestContext, data: schemas.PurchaseCreate) -> tuple[Any, bool]:
    """Store a purchase once per (customer, external_ref); (purchase, created).

    Converted into the reporting currency at the rate of its date (422 without a rate). The
    row, its event and its audit entry are one statement on the request's connection. Without
    an Idempotency-Key (whose claimed row must commit with the purchase) it runs in autocommit,
    atomic by itself: no BEGIN and COMMIT round trips. It is the only statement that writes:
    the rate, a merged customer's survivor and an existing purchase are reads, and for a merged
    customer the first run writes nothing."""
    keyed = ctx.in_transaction()
    conn = await ctx.db(transaction=keyed)
    reporting, rate = await fx_rate(ctx, data.currency, data.occurred_at, conn)
    now = ctx.now()
    margin = data.amount - data.cost
    reporting_amount = converted(data.amount, rate)
    reporting_cost = converted(data.cost, rate)
    items = [item.model_dump(mode="json") for item in data.items]
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "customer_id": data.customer_id,
        "external_ref": data.external_ref,
        "occurred_at": data.occurred_at,
        "amount": data.amount.quantize(CENT),
        "cost": data.cost.quantize(CENT),
        "margin": margin.quantize(CENT),
        "currency": data.currency,
        "status": data.status,
        "items": items,
        "refunded_amount": Decimal(0).quantize(CENT),
        "refunded_margin": Decimal(0).quantize(CENT),
        "reporting_currency": reporting,
        "fx_rate": rate,
        "reporting_amount": reporting_amount,
        "reporting_cost": reporting_cost,
        "reporting_margin": reporting_amount - reporting_cost,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    fields = [name for name, value in data if value is not None]
    items_json = json.dumps(items)

    async def write(customer_id: uuid.UUID, resolved: bool) -> Any:
        values["customer_id"] = customer_id
        event = PurchaseRecorded(
            customer_id=customer_id,
            occurred_at=data.occurred_at,
            purchase_id=values["id"],
            external_ref=data.external_ref,
            amount=values["amount"],
            cost=values["cost"],
            margin=values["margin"],
            currency=data.currency,
            status=data.status,
            reporting_currency=reporting,
            fx_rate=rate,
            reporting_amount=reporting_amount,
            reporting_cost=reporting_cost,
            reporting_margin=values["reporting_margin"],
        )
        audit = ctx.change_entries("create", "purchase", values["id"], customer_id, fields)
        return await repo.record_purchase_row(
            conn,
            values["id"],
            customer_id,
            data.external_ref,
            data.occurred_at,
            values["amount"],
            values["cost"],
            values["margin"],
            data.currency,
            data.status,
            items_json,
            reporting,
            rate,
            reporting_amount,
            reporting_cost,
            values["reporting_margin"],
            resolved,
            now,
            json.dumps([ctx.outbox.row(event)], default=str),
            audit_json(audit),
        )

    row = await write(data.customer_id, resolved=False)
    if row["merged_into"] is not None:  # nothing written: record it for the survivor
        survivor, _ = await repo.customer_status_on(conn, data.customer_id, repo.MAX_MERGE_HOPS)
        row = await write(survivor, True)
    if row["created"]:
        ctx.wake_relay(at_commit=keyed)  # else committed by the statement
        return SimpleNamespace(**values), True  # exactly what was inserted; no read back
    existing = await repo.purchase_by_ref(conn, values["customer_id"], data.external_ref)
    assert existing is not None
    if (existing.amount, existing.cost, existing.currency) != (
        data.amount,
        data.cost,
        data.currency,
    ):
        raise PurchaseRefConflict(
            f"external_ref {data.external_ref!r} is already a different purchase of this "
            "customer (amount, cost or currency differ)",
            existing_purchase_id=str(existing.id),
        )
    ctx.replayed = True  # the same purchase again: nothing changed, nothing to audit
    return existing, False


async def get_purchase(
    ctx: RequestContext, purchase_id: uuid.UUID, *, lock: bool = False
) -> Purchase:
    purchase = await repo.get(ctx.session, Purchase, purchase_id, lock=lock)
    if purchase is None:
        raise NotFound(f"Purchase {purchase_id} does not exist")
    return purchase


async def change_purchase_status(ctx: RequestContext, purchase: Purchase, status: str) -> Purchase:
    await _audit(ctx, "update", "purchase", purchase, ["status"])
    if status == purchase.status:
        return purchase
    if purchase.status == "cancelled":
        raise InvalidTransition(
            "A cancelled purchase cannot change", current_status=purchase.status
        )
    now = ctx.now()
    if status == "cancelled":
        if purchase.refunded_amount > 0:
            raise InvalidTransition(
                "A purchase with refunds cannot be cancelled; refund the remainder instead",
                refunded_amount=format(purchase.refunded_amount, "f"),
            )
        await ctx.outbox.emit(
            ctx.session,
            PurchaseCancelled(
                customer_id=purchase.customer_id, occurred_at=now, purchase_id=purchase.id
            ),
        )
    elif PURCHASE_FLOW[status] < PURCHASE_FLOW[purchase.status]:
        raise InvalidTransition(
            f"A purchase moves forward only (placed → paid → delivered), not "
            f"{purchase.status} → {status}",
            current_status=purchase.status,
        )
    purchase.status = status
    purchase.version += 1
    purchase.updated_at = now
    await ctx.session.flush()
    return purchase


async def refund_purchase(
    ctx: RequestContext, purchase: Purchase, data: schemas.RefundCreate
) -> Refund:
    """Refund part or all; the margin given back is amount x (margin / amount)."""
    if purchase.status == "cancelled":
        raise InvalidTransition(
            "A cancelled purchase cannot be refunded", current_status="cancelled"
        )
    remaining = purchase.amount - purchase.refunded_amount
    if data.amount > remaining:
        raise RefundExceedsPurchase(
            f"Refund {data.amount} exceeds the refundable {remaining} {purchase.currency}",
            refundable_amount=format(remaining, "f"),
            errors=[
                {
                    "field": "body.amount",
                    "message": f"at most {format(remaining, 'f')} remains refundable",
                    "type": "less_than_equal",
                }
            ],
        )
    if data.amount == remaining:
        # The last refund returns exactly the margin not yet returned, so rounding never drifts.
        margin = purchase.margin - purchase.refunded_margin
    else:
        margin = (data.amount * purchase.margin / purchase.amount).quantize(CENT, ROUND_HALF_EVEN)
    now = ctx.now()
    occurred_at = data.occurred_at or now
    reporting, rate = await fx_rate(ctx, purchase.currency, occurred_at)
    refund = Refund(
        id=uuid.uuid4(),
        purchase_id=purchase.id,
        customer_id=purchase.customer_id,
        amount=data.amount,
        margin=margin,
        reason=data.reason,
        occurred_at=occurred_at,
        created_at=now,
        reporting_currency=reporting,
        fx_rate=rate,
        reporting_amount=converted(data.amount, rate),
        reporting_margin=converted(margin, rate),
    )
    ctx.session.add(refund)
    purchase.refunded_amount += data.amount
    purchase.refunded_margin += margin
    purchase.version += 1
    purchase.updated_at = now
    await ctx.session.flush()
    await ctx.outbox.emit(
        ctx.session,
        PurchaseRefunded(
            customer_id=purchase.customer_id,
            occurred_at=refund.occurred_at,
            purchase_id=purchase.id,
            refund_id=refund.id,
            amount=refund.amount,
            margin=refund.margin,
            currency=purchase.currency,
            reporting_currency=reporting,
            fx_rate=rate,
            reporting_amount=refund.reporting_amount,
            reporting_margin=refund.reporting_margin,
        ),
    )
    await _audit(ctx, "create", "refund", refund, data.model_dump(exclude_none=True))
    return refund


# -- surveys ------------------------------------------------------------------------------------


async def get_survey(ctx: RequestContext, survey_id: uuid.UUID) -> Survey:
    survey = await repo.get(ctx.session, Survey, survey_id)
    if survey is None:
        raise NotFound(f"Survey {survey_id} does not exist")
    return survey


async def get_invitation(ctx: RequestContext, invitation_id: uuid.UUID) -> SurveyInvitation:
    invitation = await repo.get(ctx.session, SurveyInvitation, invitation_id)
    if invitation is None:
        raise NotFound(f"Survey invitation {invitation_id} does not exist")
    return invitation


async def invite_to_survey(ctx: RequestContext, data: schemas.InvitationCreate) -> SurveyInvitation:
    """Record an invitation unless the customer was invited within the suppression window."""
    customer_id = await _writable_customer(ctx, data.customer_id)
    state = await repo.lock_state(ctx.session, customer_id)  # serialises concurrent invites
    now = ctx.now()
    window = timedelta(days=settings_of(ctx).survey_suppression_days)
    if state.last_invited_at is not None and now - state.last_invited_at < window:
        raise SurveySuppressed(
            f"The customer was invited on {state.last_invited_at.isoformat()}; no customer is "
            f"asked more than once per {settings_of(ctx).survey_suppression_days} days",
            last_invited_at=state.last_invited_at.isoformat(),
            suppressed_until=(state.last_invited_at + window).isoformat(),
        )
    state.last_invited_at = now
    invitation = SurveyInvitation(
        id=uuid.uuid4(),
        customer_id=customer_id,
        context_type=data.context_type,
        context_id=data.context_id,
        channel=data.channel,
        sent_at=now,
    )
    ctx.session.add(invitation)
    await ctx.session.flush()
    # The outreach service sends the invitation (a signed, single-use link to the survey page).
    await ctx.outbox.emit(
        ctx.session,
        SurveyInvited(
            customer_id=customer_id,
            occurred_at=now,
            invitation_id=invitation.id,
            context_type=invitation.context_type,
            context_id=invitation.context_id,
            channel=invitation.channel,
        ),
    )
    await _audit(ctx, "create", "survey_invitation", invitation, data.model_dump(exclude_none=True))
    return invitation


async def submit_survey(ctx: RequestContext, data: schemas.SurveyCreate) -> Survey:
    customer_id, erased = await repo.customer_status(ctx.session, data.customer_id)
    invitation = None
    if data.invitation_id is not None:
        invitation = await repo.get(ctx.session, SurveyInvitation, data.invitation_id, lock=True)
        if invitation is None or invitation.customer_id != customer_id:
            raise NotFound(
                f"Survey invitation {data.invitation_id} does not exist for this customer"
            )
        if invitation.survey_id is not None:
            raise Conflict(
                "This invitation was already answered", survey_id=str(invitation.survey_id)
            )
    now = ctx.now()
    scores = data.scores.model_dump(exclude_none=True)
    survey = Survey(
        id=uuid.uuid4(),
        customer_id=customer_id,
        invitation_id=data.invitation_id,
        context_type=data.context_type or (invitation.context_type if invitation else None),
        context_id=data.context_id or (invitation.context_id if invitation else None),
        channel=data.channel or (invitation.channel if invitation else None),
        scores=scores,
        nps=data.nps,
        effort=data.effort,
        # Free text of an erased customer is not kept; the scores are.
        comment=None if erased is not None else data.comment,
        submitted_at=data.submitted_at or now,
        created_at=now,
    )
    await _insert(ctx, survey)
    if invitation is not None:
        invitation.survey_id = survey.id
        await ctx.session.flush()
    await ctx.outbox.emit(
        ctx.session,
        SurveySubmitted(
            customer_id=customer_id,
            occurred_at=survey.submitted_at,
            survey_id=survey.id,
            context_type=survey.context_type,
            context_id=survey.context_id,
            channel=survey.channel,
            scores=scores,
            nps=survey.nps,
            effort=survey.effort,
        ),
    )
    await _audit(ctx, "create", "survey", survey, data.model_dump(exclude_none=True))
    return survey


# -- schedulers ---------------------------------------------------------------------------------


async def publish_overdue(ctx: RequestContext, now: datetime | None = None) -> int:
    """Mark open follow-ups past due as overdue and publish `followup.overdue` once for each."""
    now = now or ctx.now()
    claimed = (
        await ctx.session.scalars(
            sa.select(Followup)
            .where(
                Followup.status == "open",
                Followup.overdue_notified_at.is_(None),
                Followup.due_at < now,
            )
            .order_by(Followup.due_at)
            .limit(settings_of(ctx).scheduler_batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not claimed:
        return 0
    await ctx.session.execute(
        sa.update(Followup)
        .where(Followup.id.in_([f.id for f in claimed]))
        .values(overdue_notified_at=now)
        .execution_options(synchronize_session=False)
    )
    await ctx.outbox.emit(
        ctx.session, *(FollowupOverdue(occurred_at=now, **_followup_fields(f)) for f in claimed)
    )
    return len(claimed)


async def create_auto_followups(ctx: RequestContext, rows: list[dict[str, Any]]) -> None:
    """Insert service-made follow-ups (deduplicated) and announce the ones actually created."""
    if not rows:
        return
    now = ctx.now()
    for row in rows:
        row.update(id=uuid.uuid4(), status="open", version=1, created_at=now, updated_at=now)
    created = (
        await ctx.session.execute(
            insert(Followup)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[Followup.dedupe_key])
            .returning(
                Followup.id,
                Followup.customer_id,
                Followup.kind,
                Followup.due_at,
                Followup.assignee_id,
                Followup.case_id,
            )
        )
    ).all()
    await ctx.outbox.emit(
        ctx.session,
        *(
            FollowupScheduled(
                occurred_at=now,
                customer_id=r.customer_id,
                followup_id=r.id,
                kind=r.kind,
                due_at=r.due_at,
                assignee_id=r.assignee_id,
                case_id=r.case_id,
            )
            for r in created
        ),
    )


async def create_due_revisits(ctx: RequestContext, now: datetime | None = None) -> int:
    """Create the revisit follow-up of every customer whose next revisit has come."""
    now = now or ctx.now()
    s = CustomerState
    claimed = (
        await ctx.session.execute(
            sa.select(s.customer_id, s.next_revisit_at, s.owner_id)
            .where(
                s.next_revisit_at <= now,
                s.erased_at.is_(None),
                s.merged_into.is_(None),
                s.revisit_scheduled_for.is_distinct_from(s.next_revisit_at),
            )
            .order_by(s.next_revisit_at)
            .limit(settings_of(ctx).scheduler_batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not claimed:
        return 0
    # A customer keeps one open planned revisit: when the plan moved (a tier change, a new
    # override), the open one is rescheduled rather than a second one created.
    due = sa.case(
        *((Followup.customer_id == r.customer_id, r.next_revisit_at) for r in claimed),
        else_=Followup.due_at,
    )
    moved = (
        await ctx.session.execute(
            sa.update(Followup)
            .where(
                Followup.customer_id.in_([r.customer_id for r in claimed]),
                Followup.kind == "revisit",
                Followup.origin == "cadence",
                Followup.status == "open",
            )
            .values(
                due_at=due,
                overdue_notified_at=None,
                version=Followup.version + 1,
                updated_at=now,
            )
            .returning(Followup.id, Followup.customer_id, Followup.due_at, Followup.assignee_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    await ctx.outbox.emit(
        ctx.session,
        *(
            FollowupScheduled(
                occurred_at=now,
                customer_id=m.customer_id,
                followup_id=m.id,
                kind="revisit",
                due_at=m.due_at,
                assignee_id=m.assignee_id,
            )
            for m in moved
        ),
    )
    rescheduled = {m.customer_id for m in moved}
    await create_auto_followups(
        ctx,
        [
            {
                "customer_id": r.customer_id,
                "kind": "revisit",
                "due_at": r.next_revisit_at,
                "assignee_id": r.owner_id,
                "origin": "cadence",
                "dedupe_key": f"revisit:{r.customer_id}:{r.next_revisit_at.isoformat()}",
            }
            for r in claimed
            if r.customer_id not in rescheduled
        ],
    )
    await ctx.session.execute(
        sa.update(s)
        .where(s.customer_id.in_([r.customer_id for r in claimed]))
        .values(revisit_scheduled_for=s.next_revisit_at)
        .execution_options(synchronize_session=False)
    )
    return len(claimed)


def next_occurrence(month: int, day: int, on_or_after: date) -> date:
    """The next date with this month/day (clamped to the month's length: Feb 29 -> Feb 28)."""
    for year in range(on_or_after.year, on_or_after.year + 3):
        candidate = date(year, month, min(day, calendar.monthrange(year, month)[1]))
        if candidate >= on_or_after:
            return candidate
    raise ValueError("unreachable: a month/day recurs every year")


def next_care_date(important_dates: list[dict[str, Any]], on_or_after: date) -> date | None:
    dates = [next_occurrence(d["month"], d["day"], on_or_after) for d in important_dates]
    return min(dates, default=None)


async def create_due_care(ctx: RequestContext, today: date | None = None) -> int:
    """Create care follow-ups `care_lead_days` before each customer's important dates."""
    today = today or ctx.now().date()
    horizon = today + timedelta(days=settings_of(ctx).care_lead_days)
    s = CustomerState
    claimed = (
        await ctx.session.execute(
            sa.select(s.customer_id, s.care_next_on, s.important_dates, s.owner_id)
            .where(s.care_next_on <= horizon, s.erased_at.is_(None), s.merged_into.is_(None))
            .order_by(s.care_next_on)
            .limit(settings_of(ctx).scheduler_batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    rows: list[dict[str, Any]] = []
    for r in claimed:
        on = r.care_next_on
        for d in r.important_dates:
            if next_occurrence(d["month"], d["day"], on) == on:
                rows.append(
                    {
                        "customer_id": r.customer_id,
                        "kind": "care",
                        "due_at": datetime.combine(on, time(), UTC),
                        "assignee_id": r.owner_id,
                        "origin": "important_date",
                        "note": f"{d['kind']} on {on.isoformat()}",
                        "dedupe_key": f"care:{r.customer_id}:{d['kind']}:{on.isoformat()}",
                    }
                )
        await ctx.session.execute(
            sa.update(s)
            .where(s.customer_id == r.customer_id)
            .values(care_next_on=next_care_date(r.important_dates, on + timedelta(days=1)))
        )
    await create_auto_followups(ctx, rows)
    return len(claimed)
