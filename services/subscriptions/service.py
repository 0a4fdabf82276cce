"""Business rules of webhook subscriptions; changes state in the caller's transaction."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.subscriptions import repository as repo
from services.subscriptions.config import Settings
from services.subscriptions.delivery import (
    AttemptResult,
    Sender,
    active_secrets,
    encode_body,
    like_pattern,
    record_attempt,
)
from services.subscriptions.errors import DeliveryNotFound, SubscriptionNotFound, UnknownEventTypes
from services.subscriptions.models import Delivery, Subscription, deliveries
from services.subscriptions.safety import check_target, parse_networks
from services.subscriptions.schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryRead,
    SecretRead,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
    SubscriptionUpdate,
)
from services.subscriptions.signing import new_secret
from shared.context import RequestContext
from shared.contracts import DOMAIN_TOPICS, load_all
from shared.events.registry import REGISTRY
from shared.http import check_if_match
from shared.idempotency import Reply

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


def _settings(ctx: RequestContext) -> Settings:
    settings = ctx.settings
    assert isinstance(settings, Settings)
    return settings


def read_model(ctx: RequestContext, sub: Subscription) -> SubscriptionRead:
    read = SubscriptionRead.model_validate(sub)
    read.previous_secret_expires_at = previous_secret_expiry(ctx, sub)
    return read


def secret_read(ctx: RequestContext, sub: Subscription) -> SecretRead:
    return SecretRead(
        secret=sub.secret, previous_secret_expires_at=previous_secret_expiry(ctx, sub)
    )


async def get_subscription(ctx: RequestContext, subscription_id: uuid.UUID) -> Subscription:
    sub = await repo.subscription(ctx.session, subscription_id)
    if sub is None:
        raise SubscriptionNotFound(f"Subscription {subscription_id} does not exist")
    return sub


async def create_subscription(ctx: RequestContext, data: SubscriptionCreate) -> Reply:
    """Create the subscription; the reply (with its secret) is what an idempotent retry gets."""
    settings = _settings(ctx)
    url = str(data.url)
    await check_target(url, parse_networks(settings.webhook_allowed_networks))
    event_types = check_event_types(data.event_types)
    now = ctx.now()
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
        created_by=ctx.actor,
        created_at=now,
        updated_at=now,
        version=1,
    )
    ctx.session.add(sub)
    await ctx.session.flush()
    await ctx.audit_change("create", "subscription", sub.id, fields=["secret"])
    created = SubscriptionCreated(**read_model(ctx, sub).model_dump(), secret=sub.secret)
    headers = {"ETag": f'"{sub.version}"', "Location": f"/subscriptions/{sub.id}"}
    return Reply(created, 201, headers)


def _customer_ids(ids: list[uuid.UUID] | None) -> list[str] | None:
    return sorted({str(i) for i in ids}) if ids else None


async def update_subscription(
    ctx: RequestContext,
    subscription_id: uuid.UUID,
    data: SubscriptionUpdate,
    if_match: str | None,
) -> Subscription:
    sub = await get_subscription(ctx, subscription_id)
    check_if_match(if_match, sub.version)
    fields = data.model_fields_set
    if "url" in fields and data.url is not None:
        url = str(data.url)
        await check_target(url, parse_networks(_settings(ctx).webhook_allowed_networks))
        sub.url = url
    if "event_types" in fields and data.event_types is not None:
        sub.event_types = check_event_types(data.event_types)
        sub.type_like = [like_pattern(p) for p in sub.event_types]
    if "customer_ids" in fields:
        sub.customer_ids = _customer_ids(data.customer_ids)
    if "description" in fields:
        sub.description = data.description
    now = ctx.now()
    if "enabled" in fields and data.enabled is not None and data.enabled != sub.enabled:
        sub.enabled = data.enabled
        if data.enabled:
            sub.disabled_reason = sub.disabled_at = sub.failing_since = None
            await repo.release_pending(ctx.session, sub.id, now)
        else:
            sub.disabled_reason, sub.disabled_at = "manual", now
    sub.updated_at = now
    sub.version += 1
    await ctx.session.flush()
    await ctx.audit_change("update", "subscription", sub.id, fields=sorted(fields))
    return sub


async def delete_subscription(ctx: RequestContext, subscription_id: uuid.UUID) -> None:
    sub = await get_subscription(ctx, subscription_id)
    await ctx.session.delete(sub)
    await ctx.session.flush()
    await ctx.audit_change("delete", "subscription", subscription_id)


async def list_subscriptions(
    ctx: RequestContext, enabled: bool | None, cursor: str | None, limit: int
) -> tuple[list[SubscriptionRead], str | None]:
    rows = await repo.subscription_page(ctx.session, enabled, cursor, limit)
    page, next_cursor = repo.SUBSCRIPTION_ORDER.page(rows, limit, repo.subscription_cursor_value)
    return [read_model(ctx, s) for s in page], next_cursor


async def rotate_secret(
    ctx: RequestContext, subscription_id: uuid.UUID, grace_s: int | None
) -> Subscription:
    sub = await get_subscription(ctx, subscription_id)
    grace = _settings(ctx).webhook_secret_grace_s if grace_s is None else grace_s
    now = ctx.now()
    if grace > 0:
        sub.previous_secret = sub.secret
        sub.previous_secret_expires_at = now + timedelta(seconds=grace)
    else:
        sub.previous_secret = sub.previous_secret_expires_at = None
    sub.secret = new_secret()
    sub.updated_at = now
    sub.version += 1
    await ctx.session.flush()
    await ctx.audit_change("update", "subscription", sub.id, fields=["secret", "previous_secret"])
    return sub


def previous_secret_expiry(ctx: RequestContext, sub: Subscription) -> datetime | None:
    expires = sub.previous_secret_expires_at
    return expires if expires is not None and expires > ctx.now() else None


# -- deliveries --------------------------------------------------------------------------------


def delivery_read(delivery: Delivery) -> DeliveryRead:
    next_at = delivery.next_attempt_at if delivery.status == "pending" else None
    return DeliveryRead.model_validate(delivery).model_copy(update={"next_attempt_at": next_at})


async def list_deliveries(
    ctx: RequestContext,
    subscription_id: uuid.UUID,
    status: str | None,
    event_type: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryRead], str | None]:
    await get_subscription(ctx, subscription_id)
    rows = await repo.delivery_page(ctx.session, subscription_id, status, event_type, cursor, limit)
    page, next_cursor = repo.DELIVERY_ORDER.page(rows, limit)
    return [delivery_read(d) for d in page], next_cursor


async def get_delivery(
    ctx: RequestContext, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery:
    delivery = await repo.delivery(ctx.session, delivery_id)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise DeliveryNotFound(
            f"Delivery {delivery_id} of subscription {subscription_id} does not exist"
        )
    return delivery


async def delivery_detail(ctx: RequestContext, delivery: Delivery) -> DeliveryDetail:
    attempts = await repo.attempts(ctx.session, delivery.id)
    base: dict[str, Any] = {
        name: getattr(delivery, name) for name in DeliveryDetail.model_fields if name != "attempts"
    }
    if delivery.status != "pending":
        base["next_attempt_at"] = None
    return DeliveryDetail(**base, attempts=[AttemptRead.model_validate(a) for a in attempts])


async def replay_delivery(
    ctx: RequestContext, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryDetail:
    """Queue a delivery again (same `webhook-id`), whatever its status; attempts start at 1."""
    delivery = await get_delivery(ctx, subscription_id, delivery_id)
    await repo.requeue(ctx.session, deliveries.c.id == delivery.id)
    await ctx.audit_change("update", "delivery", delivery_id)
    return await delivery_detail(ctx, await get_delivery(ctx, subscription_id, delivery_id))


async def replay_since(ctx: RequestContext, subscription_id: uuid.UUID, since: datetime) -> int:
    await get_subscription(ctx, subscription_id)
    count = await repo.requeue(
        ctx.session,
        sa.and_(
            deliveries.c.subscription_id == subscription_id,
            deliveries.c.created_at >= since,
            deliveries.c.event_type != PING_TYPE,
        ),
    )
    await ctx.audit_change("update", "delivery", subscription_id)
    return count


async def ping(
    ctx: RequestContext, sender: Sender, subscription_id: uuid.UUID
) -> tuple[AttemptResult, DeliveryDetail]:
    """Send a signed test event now and log it as a delivery; no retries."""
    settings = _settings(ctx)
    sub = await get_subscription(ctx, subscription_id)
    event_id = str(uuid.uuid4())
    now = ctx.now()
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
    ctx.session.add(delivery)
    await ctx.session.flush()
    assert len(encode_body(payload)) < settings.webhook_max_payload_bytes
    secrets = active_secrets(sub.secret, sub.previous_secret, sub.previous_secret_expires_at)
    result = await sender.send(sub.url, str(delivery.id), payload, secrets)
    await record_attempt(
        ctx.session, ctx.outbox, settings, delivery.id, sub.id, 1, result, retry=False
    )
    await ctx.audit_change("create", "delivery", delivery.id)
    refreshed = await get_delivery(ctx, sub.id, delivery.id)
    return result, await delivery_detail(ctx, refreshed)
