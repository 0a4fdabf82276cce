"""Consumed events: customer tiers (kehu.analytics), merges and erasures (kehu.customers),
completed revisit follow-ups of cases (kehu.interactions).

Handlers tolerate any order across topics: tiers keep the newest `occurred_at`, merges leave a
redirect so complaints filed later for the duplicate land on the survivor.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import service
from shared.consumer import EventHandler
from shared.context import RequestContext
from shared.contracts.analytics import CustomerTierChanged
from shared.contracts.customers import CustomerErased, CustomerMerged
from shared.contracts.interactions import FollowupCompleted
from shared.events.envelope import CloudEvent

GROUP_ID = "complaints"
SUBJECT = "system:complaints-consumer"

ContextOf = Callable[[AsyncSession], RequestContext]


def handlers(context_of: ContextOf) -> dict[str, EventHandler]:
    """The handlers, each working through the context `context_of(session)` builds."""

    async def tier_changed(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerTierChanged.model_validate(event.data)
        await service.tier_changed(context_of(session), e.customer_id, e.tier, e.occurred_at)

    async def merged(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerMerged.model_validate(event.data)
        await service.merge_customers(context_of(session), e.customer_id, e.merged_customer_id)

    async def erased(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerErased.model_validate(event.data)
        await service.erase_customer(context_of(session), e.customer_id, e.occurred_at)

    async def followup_completed(session: AsyncSession, event: CloudEvent) -> None:
        """A case's revisit was done: its outcome goes on the case."""
        e = FollowupCompleted.model_validate(event.data)
        if e.case_id is not None and e.revisit_outcome is not None:
            await service.revisit_done(
                context_of(session), e.case_id, e.followup_id, e.revisit_outcome
            )

    return {
        CustomerTierChanged.event_type(): tier_changed,
        FollowupCompleted.event_type(): followup_completed,
        CustomerMerged.event_type(): merged,
        CustomerErased.event_type(): erased,
    }
