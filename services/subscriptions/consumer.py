"""The consumer of every domain topic: queue each event for the subscriptions it matches."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.subscriptions.config import Settings
from services.subscriptions.delivery import enqueue
from shared.consumer import BatchHandler, current_event_id
from shared.events.envelope import CloudEvent

CONSUMER_GROUP = "subscriptions"


def batch_handler(settings: Settings) -> BatchHandler:
    """Every event type, known or not yet (a newer publisher's types too), is considered."""

    async def handle(session: AsyncSession, events: list[CloudEvent]) -> None:
        # Runs in the consumer's batch transaction with the inbox insert: the deliveries
        # commit together with the record that the events were processed, so none is lost.
        for event in events:
            token = current_event_id.set(event.id)
            try:
                await enqueue(session, event, settings)
            finally:
                current_event_id.reset(token)

    return handle
