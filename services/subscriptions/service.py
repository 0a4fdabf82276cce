"""Business rules of webhook subscriptions; changes state in the caller's transaction."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.subscriptions.config import Settings
from services.subscriptions.delivery import (
    AttemptResult,
    Sender,
    encode_body,
    like_pattern,
    record_attempt,
)
from services.subscriptions.errors import DeliveryNotFound, SubscriptionNotFound, UnknownEventTypes
from services.subscriptions.models import (
    Delivery,
    DeliveryAttempt,
    Subscription,
    deliveries,
)
from services.subscriptions.safety import check_target, parse_networks
from services.subscriptions.schemas import (
    AttemptRead,
    DeliveryDetail,
    SubscriptionCreate,
    SubscriptionUpdate,
)
from services.subscriptions.signing import new_secret
from shared.contracts import DOMAIN_TOPICS, load_all
from shared.events.registry import REGISTRY
from shared.http import check_if_match
from shared.outbox import Outbox
from shared.pagination import decode_cursor, encode_cursor

PING_TYPE = "kehu.webhook.ping.v1"


def known_event_types() -> list[str]:
    """The event types a subscription can receive (every contract on a domain topic)."""
    load_all()
    return [c.event_type() for c in REGISTRY if c.topic in DOMAIN_TOPICS]


def check_event_types(patterns: list[str]) -> list[str]:
    """Deduplicate the filters; refuse any that matches no known event type (likely a typo)."""
    known = known_event_types()
    unique = list(dict.fromkeys(patterns))
    unmatched = [
        p
        for p in unique
        if not any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), t) for t in known)
    ]
    if unmatched:
        raise UnknownEventTypes(
            f"These filters match no event type: {', '.join(unmatched)}; see /catalog",
            unmatched=unmatched,
        )
    return unique


async def get_subscription(session: AsyncSession, subscription_id: uuid.UUID) -> Subscription:
    sub = await session.get(Subscription, subscription_id)
    if sub is None:
        raise SubscriptionNotFound(f"Subscription {subscription_id} does not exist")
    return sub


async def create_subscription(
    session: AsyncSession, settings: Settings, data: SubscriptionCreate, created_by: str
) -> Subscription:
    url = str(data.url)
    await check_target(url, parse_networks(settings.webhook_allowed_networks))
    event_types = check_event_types(data.event_types)
    now = datetime.now(UTC)
    sub = Subscription(
        id=uuid.uuid4(),
        url=url,
        description=data.description,
        event_types=event_types,
        type_like=[like_pattern(p) for p in event_types],
        customer_ids=_customer_ids(data.customer_ids),
        enabled=data.enabled,
        disabled_reason=None if data.enabled else "manual",
        disabled_at=None if data.enabled else now,
        secret=new_secret(),
        created_by=created_by,
        created_at=now,
        updated_at=now,
        version=1,
    )
    session.add(sub)
    await session.flush()
    return sub


def _customer_ids(ids: list[uuid.UUID] | None) -> list[str] | None:
    return sorted({str(i) for i in ids}) if ids else None


async def update_subscription(
    session: AsyncSession,
    settings: Settings,
    subscription_id: uuid.UUID,
    data: SubscriptionUpdate,
    if_match: str | None,
) -> Subscription:
    sub = await get_subscription(session, subscription_id)
    check_if_match(if_match, sub.version)
    fields = data.model_fields_set
    if "url" in fields and data.url is not None:
        url = str(data.url)
        await check_target(url, parse_networks(settings.webhook_allowed_networks))
        sub.url = url
    if "event_types" in fields and data.event_types is not None:
        sub.event_types = check_event_types(data.event_types)
        sub.type_like = [like_pattern(p) for p in sub.event_types]
    if "customer_ids" in fields:
        sub.customer_ids = _customer_ids(data.customer_ids)
    if "description" in fields:
        sub.description = data.description
    now = datetime.now(UTC)
    if "enabled" in fields and data.enabled is not None and data.enabled != sub.enabled:
        sub.enabled = data.enabled
        if data.enabled:
            sub.disabled_reason = sub.disabled_at = sub.failing_since = None
            # Deliveries that waited while disabled go out now, in their order.
            await session.execute(
                sa.update(deliveries)
                .where(
                    deliveries.c.subscription_id == sub.id,
                    deliveries.c.status == "pending",
                )
                .values(next_attempt_at=now)
            )
        else:
            sub.disabled_reason, sub.disabled_at = "manual", now
    sub.updated_at = now
    sub.version += 1
    await session.flush()
    return sub


async def delete_subscription(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    sub = await get_subscription(session, subscription_id)
    await session.delete(sub)
    await session.flush()


async def list_subscriptions(
    session: AsyncSession, enabled: bool | None, cursor: str | None, limit: int
) -> tuple[list[Subscription], str | None]:
    query = sa.select(Subscription).order_by(Subscription.created_at, Subscription.id)
    if enabled is not None:
        query = query.where(Subscription.enabled.is_(enabled))
    position = decode_cursor(cursor)
    if position is not None:
        try:
            after = (datetime.fromisoformat(position["t"]), uuid.UUID(position["id"]))
        except (KeyError, TypeError, ValueError):
            from shared.pagination import InvalidCursor

            raise InvalidCursor("The cursor is not one this API issued") from None
        query = query.where(sa.tuple_(Subscription.created_at, Subscription.id) > after)
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor({"t": last.created_at.isoformat(), "id": str(last.id)})
    return rows, next_cursor


async def rotate_secret(
    session: AsyncSession, settings: Settings, subscription_id: uuid.UUID, grace_s: int | None
) -> Subscription:
    sub = await get_subscription(session, subscription_id)
    grace = settings.webhook_secret_grace_s if grace_s is None else grace_s
    now = datetime.now(UTC)
    if grace > 0:
        sub.previous_secret = sub.secret
        sub.previous_secret_expires_at = now + timedelta(seconds=grace)
    else:
        sub.previous_secret = sub.previous_secret_expires_at = None
    sub.secret = new_secret()
    sub.updated_at = now
    sub.version += 1
    await session.flush()
    return sub


def previous_secret_expiry(sub: Subscription) -> datetime | None:
    expires = sub.previous_secret_expires_at
    return expires if expires is not None and expires > datetime.now(UTC) else None


# -- deliveries --------------------------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    status: str | None,
    event_type: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Delivery], str | None]:
    await get_subscription(session, subscription_id)
    query = (
        sa.select(Delivery)
        .where(Delivery.subscription_id == subscription_id)
        .order_by(Delivery.seq.desc())
    )
    if status:
        query = query.where(Delivery.status == status)
    if event_type:
        query = query.where(Delivery.event_type == event_type)
    position = decode_cursor(cursor)
    if position is not None:
        seq = position.get("seq")
        if not isinstance(seq, int):
            from shared.pagination import InvalidCursor

            raise InvalidCursor("The cursor is not one this API issued")
        query = query.where(Delivery.seq < seq)
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"seq": rows[-1].seq})
    return rows, next_cursor


async def get_delivery(
    session: AsyncSession, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery:
    delivery = await session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise DeliveryNotFound(
            f"Delivery {delivery_id} of subscription {subscription_id} does not exist"
        )
    return delivery


async def delivery_detail(session: AsyncSession, delivery: Delivery) -> DeliveryDetail:
    attempts = (
        await session.scalars(
            sa.select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery.id)
            .order_by(DeliveryAttempt.id)
        )
    ).all()
    base: dict[str, Any] = {
        name: getattr(delivery, name) for name in DeliveryDetail.model_fields if name != "attempts"
    }
    if delivery.status != "pending":
        base["next_attempt_at"] = None
    return DeliveryDetail(**base, attempts=[AttemptRead.model_validate(a) for a in attempts])


async def replay_delivery(
    session: AsyncSession, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery:
    """Queue a delivery again (same `webhook-id`), whatever its status; attempts start at 1."""
    delivery = await get_delivery(session, subscription_id, delivery_id)
    await _requeue(session, deliveries.c.id == delivery.id)
    return await get_delivery(session, subscription_id, delivery_id)


async def replay_since(session: AsyncSession, subscription_id: uuid.UUID, since: datetime) -> int:
    await get_subscription(session, subscription_id)
    return await _requeue(
        session,
        sa.and_(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.created_at >= since,
            deliveries.c.event_type != PING_TYPE,
        ),
    )


async def _requeue(session: AsyncSession, where: sa.ColumnElement[bool]) -> int:
    result = await session.execute(
        sa.update(deliveries)
        .where(where)
        .values(
            status="pending",
            attempt_count=0,
            next_attempt_at=sa.func.now(),
            completed_at=None,
        )
        .returning(deliveries.c.id)
    )
    return len(result.all())


async def ping(
    session: AsyncSession,
    settings: Settings,
    outbox: Outbox,
    sender: Sender,
    subscription_id: uuid.UUID,
) -> tuple[AttemptResult, DeliveryDetail]:
    """Send a signed test event now and log it as a delivery; no retries."""
    from services.subscriptions.delivery import active_secrets

    sub = await get_subscription(session, subscription_id)
    event_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    payload = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/kehu/subscriptions",
        "type": PING_TYPE,
        "subject": str(sub.id),
        "time": now.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"subscription_id": str(sub.id), "message": "Test event from Kehu"},
    }
    delivery = Delivery(
        id=uuid.uuid4(),
        subscription_id=sub.id,
        event_id=event_id,
        event_type=PING_TYPE,
        ordering_key=f"ping:{event_id}",
        payload=payload,
        status="pending",
        attempt_count=0,
        next_attempt_at=now + timedelta(seconds=settings.delivery_lease_s),
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    assert len(encode_body(payload)) < settings.webhook_max_payload_bytes
    secrets = active_secrets(sub.secret, sub.previous_secret, sub.previous_secret_expires_at)
    result = await sender.send(sub.url, str(delivery.id), payload, secrets)
    await record_attempt(session, outbox, settings, delivery.id, sub.id, 1, result, retry=False)
    refreshed = await get_delivery(session, sub.id, delivery.id)
    return result, await delivery_detail(session, refreshed)
