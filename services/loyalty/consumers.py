"""Consumed events: purchases, refunds and cancellations (kehu.interactions); customers'
important dates, merges and erasures (kehu.customers); ABC tiers (kehu.analytics).

The runner records each event id in the inbox with its effect; on top of that every ledger
entry is unique on its source (event id, purchase, refund), so a record redelivered under any
id changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.loyalty import service
from shared.consumer import EventHandler
from shared.context import RequestContext
from shared.contracts.analytics import CustomerTierChanged
from shared.contracts.customers import (
    CustomerCreated,
    CustomerErased,
    CustomerMerged,
    CustomerUpdated,
)
from shared.contracts.interactions import PurchaseCancelled, PurchaseRecorded, PurchaseRefunded
from shared.events.envelope import CloudEvent

GROUP_ID = "loyalty"
SUBJECT = "system:loyalty-consumer"

ContextOf = Callable[[AsyncSession], RequestContext]


def handlers(context_of: ContextOf) -> dict[str, EventHandler]:
    """The handlers, each working through the context `context_of(session)` builds."""

    async def purchased(session: AsyncSession, event: CloudEvent) -> None:
        e = PurchaseRecorded.model_validate(event.data)
        await service.earn_purchase(context_of(session), event.id, e)

    async def refunded(session: AsyncSession, event: CloudEvent) -> None:
        e = PurchaseRefunded.model_validate(event.data)
        await service.reverse_purchase(
            context_of(session),
            event.id,
            e.purchase_id,
            refund_id=e.refund_id,
            refund_amount=e.amount,
        )

    async def cancelled(session: AsyncSession, event: CloudEvent) -> None:
        e = PurchaseCancelled.model_validate(event.data)
        await service.reverse_purchase(context_of(session), event.id, e.purchase_id)

    async def created(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerCreated.model_validate(event.data)
        await service.important_dates(
            context_of(session), e.customer_id, e.dimensions.important_dates, e.occurred_at
        )

    async def updated(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerUpdated.model_validate(event.data)
        await service.important_dates(
            context_of(session), e.customer_id, e.dimensions.important_dates, e.occurred_at
        )

    async def merged(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerMerged.model_validate(event.data)
        await service.merge(context_of(session), e.customer_id, e.merged_customer_id)

    async def erased(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerErased.model_validate(event.data)
        await service.erase(context_of(session), e.customer_id, e.occurred_at)

    async def tier_changed(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerTierChanged.model_validate(event.data)
        await service.tier_changed(context_of(session), e.customer_id, e.tier, e.occurred_at)

    return {
        PurchaseRecorded.event_type(): purchased,
        PurchaseRefunded.event_type(): refunded,
        PurchaseCancelled.event_type(): cancelled,
        CustomerCreated.event_type(): created,
        CustomerUpdated.event_type(): updated,
        CustomerMerged.event_type(): merged,
        CustomerErased.event_type(): erased,
        CustomerTierChanged.event_type(): tier_changed,
    }
