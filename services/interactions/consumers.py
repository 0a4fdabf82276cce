"""Event handlers: customers (important dates, merge, erasure) and analytics (tier changes).

Events arrive in any order across topics, and a customer may be unknown here when they do:
every handler upserts `customer_state` and ignores a change older than the one it already has.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.interactions import desk
from services.interactions import repository as repo
from services.interactions.config import Settings
from services.interactions.models import (
    CustomerState,
    Followup,
    Interaction,
    Purchase,
    Refund,
    Survey,
    SurveyInvitation,
    idempotency_keys,
    outbox,
)
from services.interactions.privacy import PRIVACY
from services.interactions.service import next_care_date
from shared.app import ConsumerSpec
from shared.auth import Principal
from shared.consumer import BatchHandler, EventHandler
from shared.context import RequestContext, utcnow
from shared.contracts import ANALYTICS_TOPIC, COMPLAINTS_TOPIC, CUSTOMERS_TOPIC
from shared.contracts.analytics import CustomerTierChanged
from shared.contracts.cases import (
    CaseClosed,
    CaseReceived,
    CaseReopened,
    CaseResolved,
    CaseStatusChanged,
)
from shared.contracts.customers import (
    ConsentChanged,
    CustomerCreated,
    CustomerErased,
    CustomerMerged,
    CustomerUpdated,
    NeedRecorded,
    NeedUpdated,
)
from shared.events.envelope import CloudEvent
from shared.outbox import Outbox

GROUP_ID = "interactions"
CONSUMER = Principal(subject="system:interactions-consumer", role="system", scopes=frozenset())
OUTBOX = Outbox(outbox, "/kehu/interactions")


def _system(session: AsyncSession, settings: Settings) -> RequestContext:
    """The consumer's context: its merges and erasures are audited as the consumer's."""
    return RequestContext(
        session=session,
        outbox=OUTBOX,
        principal=CONSUMER,
        settings=settings,
        privacy=PRIVACY,
    )


def _newer(column: Any, at: Any) -> sa.ColumnElement[bool]:
    return sa.or_(column.is_(None), column <= at)


def handlers(settings: Settings) -> dict[str, EventHandler]:
    async def one(session: AsyncSession, event: CloudEvent) -> None:
        """An event of the batched kinds alone: the set-based path with one event."""
        await _apply_run(session, settings, [event])

    async def merged(session: AsyncSession, event: CloudEvent) -> None:
        """Re-point every record of the duplicate to the survivor."""
        e = CustomerMerged.model_validate(event.data)
        old, survivor = e.merged_customer_id, e.customer_id
        if old == survivor:
            return
        for model in (Interaction, Followup, Survey, SurveyInvitation, Refund):
            await session.execute(
                sa.update(model)
                .where(model.customer_id == old)
                .values(customer_id=survivor)
                .execution_options(synchronize_session=False)
            )
        # Same external_ref at both: keep both purchases, the duplicate's ref gets a suffix.
        dup = aliased(Purchase)
        clash = (
            sa.select(dup.id)
            .where(dup.customer_id == survivor, dup.external_ref == Purchase.external_ref)
            .exists()
        )
        await session.execute(
            sa.update(Purchase)
            .where(Purchase.customer_id == old)
            .values(
                customer_id=survivor,
                external_ref=sa.case(
                    (clash, Purchase.external_ref + f" (merged from {old})"),
                    else_=Purchase.external_ref,
                ),
            )
            .execution_options(synchronize_session=False)
        )
        await _merge_state(session, old, survivor)
        await repo.refresh_contact(session, settings, [survivor])
        ctx = _system(session, settings)
        await desk.move_records(ctx, old, survivor)
        await ctx.audit_change("merge", "customer", old, survivor, ["customer_id"])
        # The survivor was erased before this merge arrived: what the duplicate brings along
        # is scrubbed too.
        if (await repo.customer_status(session, survivor))[1] is not None:
            await scrub_customer(ctx, [survivor, old])

    async def erased(session: AsyncSession, event: CloudEvent) -> None:
        """Scrub free text and contact details; amounts, scores and dates stay."""
        e = CustomerErased.model_validate(event.data)
        customer_id = await repo.resolve_customer(session, e.customer_id)
        ids = list({customer_id, e.customer_id})
        await scrub_customer(_system(session, settings), ids)
        s = CustomerState
        values: dict[str, Any] = {
            "erased_at": e.occurred_at,
            "important_dates": [],
            "care_next_on": None,
            "next_revisit_at": None,
            "owner_id": None,
        }
        for cid in ids:
            await session.execute(
                insert(s)
                .values(customer_id=cid, **values)
                .on_conflict_do_update(index_elements=[s.customer_id], set_=values)
            )

    async def case_resolved(session: AsyncSession, event: CloudEvent) -> None:
        """The outcome on the timeline and the case's revisit on the owner's agenda."""
        e = CaseResolved.model_validate(event.data)
        await desk.case_resolved(_system(session, settings), e)

    return {
        CustomerCreated.event_type(): one,
        CustomerUpdated.event_type(): one,
        CustomerMerged.event_type(): merged,
        CustomerErased.event_type(): erased,
        CustomerTierChanged.event_type(): one,
        CaseResolved.event_type(): case_resolved,
        # The service desk's cases, needs and consent changes on the timeline.
        **dict.fromkeys(TIMELINE, one),
    }


def _case_received(event: CloudEvent) -> desk.Entry:
    e = CaseReceived.model_validate(event.data)
    return desk.case_entry(e, {"status": "received", "severity": e.severity, "channel": e.channel})


def _case_status(event: CloudEvent) -> desk.Entry:
    e = CaseStatusChanged.model_validate(event.data)
    return desk.case_entry(e, {"status": e.to_status})


def _case_reopened(event: CloudEvent) -> desk.Entry:
    return desk.case_entry(CaseReopened.model_validate(event.data), {"outcome": None})


def _case_closed(event: CloudEvent) -> desk.Entry:
    e = CaseClosed.model_validate(event.data)
    return desk.case_entry(e, {"status": "closed", "revisit_outcome": e.revisit_outcome})


def _need(event: CloudEvent) -> desk.Entry:
    recorded = event.type == NeedRecorded.event_type()
    e = (NeedRecorded if recorded else NeedUpdated).model_validate(event.data)
    return desk.need_entry(e, recorded)


def _consent(event: CloudEvent) -> desk.Entry:
    return desk.consent_entry(ConsentChanged.model_validate(event.data), event.id)


# What each event of another service's care puts on the timeline: one record's entry.
TIMELINE: dict[str, Callable[[CloudEvent], desk.Entry]] = {
    CaseReceived.event_type(): _case_received,
    CaseStatusChanged.event_type(): _case_status,
    CaseReopened.event_type(): _case_reopened,
    CaseClosed.event_type(): _case_closed,
    NeedRecorded.event_type(): _need,
    NeedUpdated.event_type(): _need,
    ConsentChanged.event_type(): _consent,
}


SCRUB: dict[Any, dict[str, Any]] = {
    Interaction: {"contact_person": None, "subject": None, "summary": None},
    Survey: {"comment": None},
    Refund: {"reason": None},
    # Care follow-ups' keys and notes name the important date: they go too.
    Followup: {"note": None, "dedupe_key": None},
}


async def scrub_customer(ctx: RequestContext, ids: list[uuid.UUID]) -> None:
    """Remove the personal text of these customers' records (set to NULL: no ciphertext
    remains), cancel their open follow-ups and drop stored Idempotency-Key replies."""
    session = ctx.session
    for model, cleared in SCRUB.items():
        await session.execute(
            sa.update(model)
            .where(model.customer_id.in_(ids))
            .values(**cleared)
            .execution_options(synchronize_session=False)
        )
    # Nobody contacts an erased customer again.
    await session.execute(
        sa.update(Followup)
        .where(Followup.customer_id.in_(ids), Followup.status == "open")
        .values(status="cancelled", updated_at=sa.func.now(), version=Followup.version + 1)
        .execution_options(synchronize_session=False)
    )
    # Stored Idempotency-Key replies repeat what was written: they go too.
    await session.execute(
        sa.delete(idempotency_keys).where(
            idempotency_keys.c.body["customer_id"].astext.in_([str(i) for i in ids])
        )
    )
    fields = [f"{m.__tablename__}.{c}" for m, cleared in SCRUB.items() for c in cleared]
    for cid in ids:
        await ctx.audit_change("erase", "customer", cid, cid, fields)


async def _merge_state(session: AsyncSession, old: uuid.UUID, survivor: uuid.UUID) -> None:
    await repo.ensure_state(session, old)
    await repo.ensure_state(session, survivor)
    s = CustomerState
    dup = aliased(s)

    def of_duplicate(column: Any) -> Any:
        return sa.select(column).where(dup.customer_id == old).scalar_subquery()

    await session.execute(
        sa.update(s)
        .where(s.customer_id == survivor)
        .values(
            cadence_days_override=sa.func.coalesce(
                s.cadence_days_override, of_duplicate(dup.cadence_days_override)
            ),
            last_invited_at=sa.func.greatest(s.last_invited_at, of_duplicate(dup.last_invited_at)),
            updated_at=sa.func.now(),
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        sa.update(s)
        .where(s.customer_id == old)
        .values(merged_into=survivor, next_revisit_at=None, care_next_on=None)
        .execution_options(synchronize_session=False)
    )


# The high-volume events (every new customer; a re-rank's wave of tier changes; every case,
# need and consent change) are applied set-based, a few statements per batch; the rare ones
# (merge, erasure, a resolved case's revisit) one at a time.
BATCHED = frozenset(
    {
        CustomerCreated.event_type(),
        CustomerUpdated.event_type(),
        CustomerTierChanged.event_type(),
        *TIMELINE,
    }
)


def batch_handler(settings: Settings, single: dict[str, EventHandler]) -> BatchHandler:
    """Apply a batch in order: runs of batchable events set-based, the others one by one."""

    async def handle(session: AsyncSession, events: list[CloudEvent]) -> None:
        run: list[CloudEvent] = []
        for event in events:
            if event.type in BATCHED:
                run.append(event)
                continue
            await _apply_run(session, settings, run)
            run = []
            await single[event.type](session, event)
        await _apply_run(session, settings, run)

    return handle


async def _apply_run(session: AsyncSession, settings: Settings, run: list[CloudEvent]) -> None:
    """Dimensions, tiers and timeline records touch different columns and tables, so a run
    applies each set-based; within each, the newest event per customer (per timeline record)
    wins, as the one-by-one guards would decide."""
    s = CustomerState
    today = utcnow().date()
    dimensions: dict[uuid.UUID, dict[str, Any]] = {}
    tiers: dict[uuid.UUID, CustomerTierChanged] = {}
    timeline: list[desk.Entry] = []
    for event in run:
        if event.type in TIMELINE:
            timeline.append(TIMELINE[event.type](event))
            continue
        if event.type == CustomerTierChanged.event_type():
            t = CustomerTierChanged.model_validate(event.data)
            if t.customer_id not in tiers or tiers[t.customer_id].occurred_at <= t.occurred_at:
                tiers[t.customer_id] = t
            continue
        cls = CustomerCreated if event.type == CustomerCreated.event_type() else CustomerUpdated
        e = cls.model_validate(event.data)
        current = dimensions.get(e.customer_id)
        if current is None or current["dimensions_at"] <= e.occurred_at:
            dates = [d.model_dump() for d in e.dimensions.important_dates]
            dimensions[e.customer_id] = {
                "customer_id": e.customer_id,
                "important_dates": dates,
                "owner_id": e.dimensions.owner_id,
                "dimensions_at": e.occurred_at,
                "care_next_on": next_care_date(dates, today),
            }
    if dimensions:
        stmt = insert(s)
        x = stmt.excluded
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[s.customer_id],
                set_={
                    "important_dates": x.important_dates,
                    "owner_id": x.owner_id,
                    "dimensions_at": x.dimensions_at,
                    "care_next_on": x.care_next_on,
                    "updated_at": sa.func.now(),
                },
                where=sa.and_(_newer(s.dimensions_at, x.dimensions_at), s.erased_at.is_(None)),
            ),
            list(dimensions.values()),
        )
    if tiers:
        survivors = await repo.resolve_customers(session, list(tiers))
        newest: dict[uuid.UUID, CustomerTierChanged] = {}
        for customer_id, t in tiers.items():
            survivor = survivors[customer_id]
            if survivor not in newest or newest[survivor].occurred_at <= t.occurred_at:
                newest[survivor] = t
        stmt = insert(s)
        x = stmt.excluded
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[s.customer_id],
                set_={"tier": x.tier, "tier_changed_at": x.tier_changed_at},
                where=_newer(s.tier_changed_at, x.tier_changed_at),
            ),
            [
                {"customer_id": c, "tier": t.tier, "tier_changed_at": t.occurred_at}
                for c, t in newest.items()
            ],
        )
        await repo.refresh_next_revisit(session, settings, list(newest))
    await desk.record(session, timeline)


def consumer_spec(settings: Settings) -> ConsumerSpec:
    single = handlers(settings)
    return ConsumerSpec(
        GROUP_ID,
        [CUSTOMERS_TOPIC, ANALYTICS_TOPIC, COMPLAINTS_TOPIC],
        single,
        batch_handler=batch_handler(settings, single),
        batch_types=frozenset(single),
    )
