"""Consumed events: the analytics insights (tier, lifecycle stage, churn risk) of a customer.

Each kind keeps the newest `occurred_at`. When a tier, lifecycle stage or churn level actually
changes, the customer's `updated_at` moves and `customer.updated` names the changed insight
fields, so a system syncing with `updated_since` sees the change.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import service
from shared.consumer import EventHandler
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


def handlers(context_of: ContextOf) -> dict[str, EventHandler]:
    """The handlers, each working through the context `context_of(session)` builds."""

    async def tier_changed(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerTierChanged.model_validate(event.data)
        await service.apply_insight(
            context_of(session),
            e.customer_id,
            "tier_changed_at",
            {"tier": e.tier, "tier_changed_at": e.occurred_at},
        )

    async def lifecycle_changed(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerLifecycleChanged.model_validate(event.data)
        await service.apply_insight(
            context_of(session),
            e.customer_id,
            "lifecycle_changed_at",
            {"lifecycle_stage": e.stage, "lifecycle_changed_at": e.occurred_at},
        )

    async def churn_risk_changed(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerChurnRiskChanged.model_validate(event.data)
        await service.apply_insight(
            context_of(session),
            e.customer_id,
            "churn_risk_changed_at",
            {
                "churn_risk_score": e.score,
                "churn_risk_level": e.level,
                "churn_risk_reasons": e.reasons,
                "churn_risk_changed_at": e.occurred_at,
            },
        )

    return {
        CustomerTierChanged.event_type(): tier_changed,
        CustomerLifecycleChanged.event_type(): lifecycle_changed,
        CustomerChurnRiskChanged.event_type(): churn_risk_changed,
    }
