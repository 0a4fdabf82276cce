"""Events published by the outreach service on `kehu.outreach`: every state change of a message.

They carry identifiers, the purpose, channel, template and the reason of the state, never the
address or the text of a message.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts import OUTREACH_TOPIC
from shared.contracts.common import CustomerEvent
from shared.events.registry import contract

MessagePurpose = Literal["transactional", "marketing"]
MessageChannel = Literal["email", "sms", "wechat"]
MessageStatus = Literal[
    "queued", "deferred", "sent", "delivered", "bounced", "failed", "suppressed"
]


class MessageEvent(CustomerEvent):
    message_id: UUID
    purpose: MessagePurpose
    channel: MessageChannel | None = Field(
        None, description="Null while a `preferred` channel is not resolved yet."
    )
    template_key: str = Field(examples=["case_resolved"])
    status: MessageStatus
    reason: str | None = Field(
        None,
        examples=["consent_withdrawn"],
        description="Why the message is in this state (a code, e.g. `quiet_hours`).",
    )
    attempts: int = Field(0, ge=0, description="Delivery attempts so far.")


@contract("message.queued", 1, OUTREACH_TOPIC, "A message to a customer was queued.")
class MessageQueued(MessageEvent):
    pass


@contract(
    "message.deferred",
    1,
    OUTREACH_TOPIC,
    "A message waits: quiet hours in the customer's time zone, or a retry after a failure.",
)
class MessageDeferred(MessageEvent):
    pass


@contract("message.sent", 1, OUTREACH_TOPIC, "A message was handed to the provider.")
class MessageSent(MessageEvent):
    pass


@contract("message.delivered", 1, OUTREACH_TOPIC, "The provider reported the message delivered.")
class MessageDelivered(MessageEvent):
    pass


@contract("message.bounced", 1, OUTREACH_TOPIC, "The provider reported the message bounced.")
class MessageBounced(MessageEvent):
    pass


@contract("message.failed", 1, OUTREACH_TOPIC, "A message could not be sent (retries used up).")
class MessageFailed(MessageEvent):
    pass


@contract(
    "message.suppressed",
    1,
    OUTREACH_TOPIC,
    "A message was not sent on purpose: no consent, frequency cap, no address, erased customer.",
)
class MessageSuppressed(MessageEvent):
    pass


BY_STATUS: dict[str, type[MessageEvent]] = {
    "queued": MessageQueued,
    "deferred": MessageDeferred,
    "sent": MessageSent,
    "delivered": MessageDelivered,
    "bounced": MessageBounced,
    "failed": MessageFailed,
    "suppressed": MessageSuppressed,
}
