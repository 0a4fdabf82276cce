"""Events published by the subscriptions service on `kehu.subscriptions`.

They are about a webhook subscription, not a customer, so their Kafka key is the subscription id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts import SUBSCRIPTIONS_TOPIC
from shared.events.registry import EventContract, contract

DisabledReason = Literal["endpoint_gone", "failing"]


@contract(
    "subscription.disabled",
    1,
    SUBSCRIPTIONS_TOPIC,
    "Kehu disabled a webhook subscription: its endpoint answered 410 Gone, or every delivery "
    "to it failed for longer than the disable-after period.",
)
class SubscriptionDisabled(EventContract):
    subscription_id: UUID = Field(
        description="The disabled subscription (the Kafka key).",
        examples=["2f0c1e7a-5b4d-4c3e-9a8b-7c6d5e4f3a2b"],
    )
    reason: DisabledReason = Field(
        description="`endpoint_gone`: the endpoint answered 410; `failing`: every delivery "
        "failed for longer than the disable-after period."
    )
    detail: str = Field(
        description="Human-readable explanation with the last error.",
        examples=["every delivery failed since 2026-11-18T10:00:00Z; last: HTTP 503"],
    )
    failing_since: datetime | None = Field(
        None, description="Start of the failure streak, for `failing`."
    )
    last_status_code: int | None = Field(None, examples=[503])
    occurred_at: datetime = Field(description="When the subscription was disabled (UTC).")

    def partition_key(self) -> str:
        return str(self.subscription_id)
