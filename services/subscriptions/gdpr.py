"""GDPR for subscriptions: the deliveries of events about a customer, and their erasure.

Export: every delivery whose event is keyed by the customer or names them in its data (with the
payload sent), and the subscriptions that filter on the customer's id. Erasure (on
`customer.erased`): the payloads are redacted to the CloudEvent's envelope (id, type, source,
time), receivers' response excerpts dropped, pending deliveries cancelled, the id removed from
subscription filters; status, attempts and timings stay. The `customer.erased` notice itself
still goes out: it carries only the id, and subscribers need it to erase their copies.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from services.subscriptions import repository as repo
from shared.context import RequestContext
from shared.gdpr import GdprSpec, Holding

KEPT_AFTER_ERASURE = [
    "deliveries: status, attempt count, status codes, errors and timings, with the payload "
    "reduced to the event's id, type, source and time",
    "the customer.erased notice to subscribers (the customer's id only)",
]


async def export(ctx: RequestContext, customer_id: uuid.UUID) -> Holding:
    deliveries = await repo.deliveries_of_customer(ctx.session, customer_id)
    filters = await repo.subscriptions_filtering(ctx.session, customer_id)
    return Holding(
        data={
            "deliveries": [
                {
                    "id": d.id,
                    "subscription_id": d.subscription_id,
                    "event_id": d.event_id,
                    "event_type": d.event_type,
                    "status": d.status,
                    "attempts": d.attempt_count,
                    "last_status_code": d.last_status_code,
                    "created_at": d.created_at,
                    "completed_at": d.completed_at,
                    "payload": d.payload,
                }
                for d in deliveries
            ],
            "subscriptions_filtering_on_customer": [
                {
                    "id": s.id,
                    "description": s.description,
                    "event_types": s.event_types,
                    "created_at": s.created_at,
                }
                for s in filters
            ],
        },
        erased_at=await repo.erased_at(ctx.session, customer_id),
    )


async def erasure(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[bool, datetime | None]:
    return (
        await repo.holds_customer(ctx.session, customer_id),
        await repo.erased_at(ctx.session, customer_id),
    )


async def erase(ctx: RequestContext, customer_id: uuid.UUID, at: datetime) -> None:
    """Redact what the delivery log holds about the customer and record the erasure."""
    redacted = await repo.redact_customer(ctx.session, customer_id, at)
    await repo.record_erasure(ctx.session, customer_id, at, redacted)
    await ctx.audit_change("erase", "delivery", customer_id, customer_id, ["payload"])


GDPR = GdprSpec(
    service="subscriptions",
    export=export,
    erasure=erasure,
    kept_after_erasure=KEPT_AFTER_ERASURE,
    export_description="Subscriptions holds the deliveries of events about the customer.",
)
