"""Queries over subscriptions and the delivery log; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.subscriptions.models import (
    Delivery,
    DeliveryAttempt,
    Subscription,
    deliveries,
    delivery_attempts,
    erased_customers,
    subscriptions,
)
from shared.contracts.customers import CustomerErased
from shared.keyset import Keyset, SortKey, parse_datetime

SUBSCRIPTION_ORDER = Keyset(
    SortKey(Subscription.created_at, "t", parse=parse_datetime),
    SortKey(Subscription.id, "id", parse=uuid.UUID),
)
DELIVERY_ORDER = Keyset(SortKey(Delivery.seq, "seq", descending=True, parse=int))
ERASURE_NOTICE = CustomerErased.event_type()


def subscription_cursor_value(sub: Subscription, name: str) -> Any:
    return sub.created_at.isoformat() if name == "t" else getattr(sub, name)


async def subscription(session: AsyncSession, subscription_id: uuid.UUID) -> Subscription | None:
    return await session.get(Subscription, subscription_id)


async def subscription_page(
    session: AsyncSession, enabled: bool | None, cursor: str | None, limit: int
) -> Sequence[Subscription]:
    query = sa.select(Subscription)
    if enabled is not None:
        query = query.where(Subscription.enabled.is_(enabled))
    return (await session.scalars(SUBSCRIPTION_ORDER.apply(query, cursor, limit))).all()


async def delivery_page(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    status: str | None,
    event_type: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Delivery]:
    query = sa.select(Delivery).where(Delivery.subscription_id == subscription_id)
    if status:
        query = query.where(Delivery.status == status)
    if event_type:
        query = query.where(Delivery.event_type == event_type)
    return (await session.scalars(DELIVERY_ORDER.apply(query, cursor, limit))).all()


async def delivery(session: AsyncSession, delivery_id: uuid.UUID) -> Delivery | None:
    return await session.get(Delivery, delivery_id, populate_existing=True)


async def attempts(session: AsyncSession, delivery_id: uuid.UUID) -> Sequence[DeliveryAttempt]:
    return (
        await session.scalars(
            sa.select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
    ).all()


async def release_pending(session: AsyncSession, subscription_id: uuid.UUID, at: datetime) -> None:
    """Deliveries that waited while the subscription was disabled go out now, in order."""
    await session.execute(
        sa.update(deliveries)
        .where(deliveries.c.subscription_id == subscription_id, deliveries.c.status == "pending")
        .values(next_attempt_at=at)
    )


async def requeue(session: AsyncSession, where: sa.ColumnElement[bool]) -> int:
    result = await session.execute(
        sa.update(deliveries)
        .where(where)
        .values(status="pending", attempt_count=0, next_attempt_at=sa.func.now(), completed_at=None)
        .returning(deliveries.c.id)
    )
    return len(result.all())


# -- GDPR -------------------------------------------------------------------------------------


def mentions(customer_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """Deliveries of events about the customer: keyed by them, or naming them in the data."""
    cid = str(customer_id)
    d = deliveries.c
    return sa.or_(
        d.ordering_key == cid,
        d.payload["data"]["customer_id"].astext == cid,
        d.payload["data"]["merged_customer_id"].astext == cid,
    )


def filters_on(customer_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """Subscriptions whose customer filter names the customer."""
    return sa.literal(str(customer_id)) == sa.any_(subscriptions.c.customer_ids)


async def deliveries_of_customer(session: AsyncSession, customer_id: uuid.UUID) -> list[Any]:
    d = deliveries.c
    rows = await session.execute(
        sa.select(
            d.id,
            d.subscription_id,
            d.event_id,
            d.event_type,
            d.status,
            d.attempt_count,
            d.created_at,
            d.completed_at,
            d.last_status_code,
            d.payload,
        )
        .where(mentions(customer_id))
        .order_by(d.seq)
    )
    return list(rows.all())


async def subscriptions_filtering(session: AsyncSession, customer_id: uuid.UUID) -> list[Any]:
    s = subscriptions.c
    rows = await session.execute(
        sa.select(s.id, s.description, s.event_types, s.created_at)
        .where(filters_on(customer_id))
        .order_by(s.created_at, s.id)
    )
    return list(rows.all())


async def erased_at(session: AsyncSession, customer_id: uuid.UUID) -> datetime | None:
    return await session.scalar(
        sa.select(erased_customers.c.erased_at).where(erased_customers.c.customer_id == customer_id)
    )


async def holds_customer(session: AsyncSession, customer_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            sa.select(
                sa.or_(
                    sa.exists().where(mentions(customer_id)),
                    sa.exists().where(filters_on(customer_id)),
                )
            )
        )
    )


async def redact_customer(session: AsyncSession, customer_id: uuid.UUID, at: datetime) -> int:
    """Redact the payloads that mention the customer; keep status, attempts and timings.

    The `customer.erased` notice itself is kept (it carries only the id, and receivers need it
    to erase their own copies); other deliveries still pending are cancelled, since what they
    would carry is gone."""
    d = deliveries.c
    target = sa.and_(mentions(customer_id), d.event_type != ERASURE_NOTICE)
    redacted = (
        await session.execute(
            sa.update(deliveries)
            .where(target)
            .values(
                payload=sa.func.jsonb_build_object(
                    "specversion",
                    d.payload["specversion"],
                    "id",
                    d.payload["id"],
                    "type",
                    d.payload["type"],
                    "source",
                    d.payload["source"],
                    "time",
                    d.payload["time"],
                    "data",
                    sa.text("'{}'::jsonb"),
                    "redacted",
                    sa.true(),
                ),
                ordering_key=sa.func.concat("erased:", d.id),
                status=sa.case((d.status == "pending", "failed"), else_=d.status),
                last_error=sa.case(
                    (d.status == "pending", "customer erased before delivery"),
                    else_=d.last_error,
                ),
                completed_at=sa.case((d.status == "pending", at), else_=d.completed_at),
            )
            .returning(d.id)
        )
    ).all()
    ids = [row.id for row in redacted]
    if ids:
        # A receiver's answer can echo what it was sent.
        await session.execute(
            sa.update(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_(ids))
            .values(response_excerpt=None)
        )
    s = subscriptions.c
    await session.execute(
        sa.update(subscriptions)
        .where(filters_on(customer_id))
        .values(customer_ids=sa.func.array_remove(s.customer_ids, str(customer_id)))
    )
    return len(ids)


async def record_erasure(
    session: AsyncSession, customer_id: uuid.UUID, at: datetime, redacted: int
) -> None:
    e = erased_customers
    await session.execute(
        insert(e)
        .values(customer_id=customer_id, erased_at=at, deliveries_redacted=redacted)
        .on_conflict_do_update(
            index_elements=[e.c.customer_id],
            set_={"deliveries_redacted": e.c.deliveries_redacted + redacted},
        )
    )
