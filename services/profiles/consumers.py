"""Consumed events: the analytics insights (tier, lifecycle stage, churn risk) of a customer.

Each kind keeps the newest `occurred_at`. When a tier, lifecycle stage or churn level actually
changes, the customer's `updated_at` moves and `customer.updated` names the changed insight
fields, so a system syncing with `updated_since` sees the change. A consumer batch is applied
in a few statements (`service.apply_insights`), with one `customer.updated` per customer
naming everything that changed for it in the batch: a re-rank sends a new customer's tier,
lifecycle stage and churn risk together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import service
from shared.consumer import BatchHandler, EventHandler
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


def insight(event: CloudEvent) -> service.Insight:
    """The insight an analytics event carries: (customer, its kind's time column, values)."""
    if event.type == CustomerTierChanged.event_type():
        t = CustomerTierChanged.model_validate(event.data)
        return t.customer_id, "tier_changed_at", {"tier": t.tier, "tier_changed_at": t.occurred_at}
    if event.type == CustomerLifecycleChanged.event_type():
        s = CustomerLifecycleChanged.model_validate(event.data)
        stage: dict[str, Any] = {"lifecycle_stage": s.stage, "lifecycle_changed_at": s.occurred_at}
        return s.customer_id, "lifecycle_changed_at", stage
    c = CustomerChurnRiskChanged.model_validate(event.data)
    values: dict[str, Any] = {
        "churn_risk_score": c.score,
        "churn_risk_level": c.level,
        "churn_risk_reasons": c.reasons,
        "churn_risk_changed_at": c.occurred_at,
    }
    return c.customer_id, "churn_risk_changed_at", values


EVENT_TYPES = (
    CustomerTierChanged.event_type(),
    CustomerLifecycleChanged.event_type(),
    CustomerChurnRiskChanged.event_type(),
)


def batch_handler(context_of: ContextOf) -> BatchHandler:
    """A consumer batch's insights applied together (`service.apply_insights`)."""

    async def apply(session: AsyncSession, events: list[CloudEvent]) -> None:
        await service.apply_insights(context_of(session), [insight(e) for e in events])

    return apply


def handlers(context_of: ContextOf) -> dict[str, EventHandler]:
    """One event at a time, through the batch handler."""
    apply = batch_handler(context_of)

    async def one(session: AsyncSession, event: CloudEvent) -> None:
        await apply(session, [event])

    return dict.fromkeys(EVENT_TYPES, one)
