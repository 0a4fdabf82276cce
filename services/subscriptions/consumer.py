"""The consumer of every domain topic: queue each event for the subscriptions it matches."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.subscriptions.config import Settings
from services.subscriptions.delivery import enqueue
from shared.consumer import EventHandler
from shared.events.envelope import CloudEvent

CONSUMER_GROUP = "subscriptions"


class EveryType(dict[str, EventHandler]):
    """Handlers for every event type, known or not yet (a newer publisher's types too)."""

    def __init__(self, handler: EventHandler) -> None:
        super().__init__()
        self.handler = handler

    def get(self, key: str, default: EventHandler | None = None) -> EventHandler:  # type: ignore[override]
        return self.handler


def handlers(settings: Settings) -> dict[str, EventHandler]:
    async def handle(session: AsyncSession, event: CloudEvent) -> None:
        # Runs in the consumer's batch transaction with the inbox insert: the deliveries
        # commit together with the record that the event was processed, so none is lost.
        await enqueue(session, event, settings)

    return EveryType(handle)
