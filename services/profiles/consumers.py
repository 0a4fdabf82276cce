"""Consumed events: the analytics insights (tier, lifecycle stage, churn risk) of a customer.

Each kind keeps the newest `occurred_at`. When a tier, lifecycle stage or churn level actually
changes, the customer's `updated_at` moves and `customer.updated` names the changed insight
fields, so a system syncing with `updated_since` sees the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import service
from services.profiles.service import Insight
from shared.consumer import BatchHandler, EventHandler, in_steps
from shared.context import RequestContext
from shared.contracts.analytics import (
    CustomerChurnRiskChanged,
    CustomerLifecycleChanged,
    CustomerTierChanged,
)
from shared.events.envelope import CloudEvent

GROUP_ID = "profiles"
SUBJECT = "system:profiles-consumer"

ContextOf = Callable[[AsyncSession], RequestContext]


def tier(data: dict[str, Any]) -> Insight:
    e = CustomerTierChanged.model_validate(data)
    return e.customer_id, "tier_changed_at", {"tier": e.tier, "tier_changed_at": e.occurred_at}


def lifecycle(data: dict[str, Any]) -> Insight:
    e = CustomerLifecycleChanged.model_validate(data)
    values = {"lifecycle_stage": e.stage, "lifecycle_changed_at": e.occurred_at}
    return e.customer_id, "lifecycle_changed_at", values


def churn_risk(data: dict[str, Any]) -> Insight:
    e = CustomerChurnRiskChanged.model_validate(data)
    values = {
        "churn_risk_score": e.score,
        "churn_risk_level": e.level,
        "churn_risk_reasons": e.reasons,
        "churn_risk_changed_at": e.occurred_at,
    }
    return e.customer_id, "churn_risk_changed_at", values


INSIGHTS: dict[str, Callable[[dict[str, Any]], Insight]] = {
    CustomerTierChanged.event_type(): tier,
    CustomerLifecycleChanged.event_type(): lifecycle,
    CustomerChurnRiskChanged.event_type(): churn_risk,
}


def handlers(context_of: ContextOf) -> dict[str, EventHandler]:
    """One handler for every insight event: the event alone through `batch_handler`."""
    batch = batch_handler(context_of)

    async def apply(session: AsyncSession, event: CloudEvent) -> None:
        await batch(session, [event])

    return dict.fromkeys(INSIGHTS, apply)


def batch_handler(context_of: ContextOf) -> BatchHandler:
    """A fetched batch's insight events applied together, in order, by
    `service.apply_insights` in the context `context_of(session)` builds."""

    async def apply(session: AsyncSession, events: list[CloudEvent]) -> None:
        insights: list[Insight] = []
        async for step in in_steps(events):
            insights += [INSIGHTS[event.type](event.data) for event in step]
        await service.apply_insights(context_of(session), insights)

    return apply
