"""The consumer of every domain topic: queue each event for the subscriptions it matches."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.subscriptions.config import Settings
from services.subscriptions.delivery import enqueue
from services.subscriptions.gdpr import erase
from shared.consumer import BatchHandler, current_event_id
from shared.context import RequestContext
from shared.contracts.customers import CustomerErased
from shared.events.envelope import CloudEvent

CONSUMER_GROUP = "subscriptions"
ERASED = CustomerErased.event_type()


def batch_handler(settings: Settings, app_state: Callable[[], Any]) -> BatchHandler:
    """Every event type, known or not yet (a newer publisher's types too), is considered.

    `app_state` gives the running app's state (the erasure works through a system context)."""

    async def handle(session: AsyncSession, events: list[CloudEvent]) -> None:
        # Runs in the consumer's batch transaction with the inbox insert: the deliveries
        # commit together with the record that the events were processed, so none is lost.
        await enqueue(session, events, settings)
        for event in events:
            if event.type != ERASED:
                continue
            # After the notice is queued: subscribers still learn of the erasure.
            token = current_event_id.set(event.id)
            try:
                erased = CustomerErased.model_validate(event.data)
                ctx = RequestContext.system(session, app_state())
                await erase(ctx, erased.customer_id, erased.occurred_at)
            finally:
                current_event_id.reset(token)

    return handle
