"""Routes of the subscriptions service: parse, call the service layer, map to responses."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.subscriptions import service
from services.subscriptions.delivery import Sender
from services.subscriptions.schemas import (
    DeliveryDetail,
    DeliveryRead,
    DeliveryStatus,
    PingResult,
    ReplayRequest,
    ReplayResult,
    RotateSecret,
    SecretRead,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
    SubscriptionUpdate,
)
from shared.context import RequestContext, context
from shared.http import IdempotencyKeyHeader, IfMatch, set_etag
from shared.idempotency import idempotent
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from shared.problems import problem_responses

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
Reader = Annotated[RequestContext, context("subscriptions:read")]
Writer = Annotated[RequestContext, context("subscriptions:write")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]


@router.post(
    "",
    status_code=201,
    summary="Create a webhook subscription",
    response_model=SubscriptionCreated,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_subscription(
    ctx: Writer, data: SubscriptionCreate, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Subscribe a URL to events. Needs `subscriptions:write`.

    `event_types` takes exact types (`kehu.complaint.resolved.v1`) or patterns where `*`
    matches anything (`kehu.complaint.*`); each must match a known type (see `/catalog`).
    `customer_ids` narrows delivery to those customers. The URL must be https to a public
    address: private, loopback and link-local targets are refused (422 `unsafe-target`) unless
    the deployment's allow-list permits them.

    The answer carries the `whsec_` signing secret. Every delivery is a structured CloudEvent
    POSTed with Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
    `webhook-signature`). Send `Idempotency-Key` to make retries of this call safe.
    """
    return await idempotent(ctx, idempotency_key, lambda: service.create_subscription(ctx, data))


@router.get(
    "",
    summary="List webhook subscriptions",
    response_model=Page[SubscriptionRead],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_subscriptions(
    ctx: Reader,
    enabled: Annotated[bool | None, Query(description="Only enabled (or disabled) ones.")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[SubscriptionRead]:
    """Subscriptions, oldest first, with cursor pagination. Needs `subscriptions:read`."""
    items, next_cursor = await service.list_subscriptions(ctx, enabled, cursor, limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{subscription_id}",
    summary="Read a webhook subscription",
    response_model=SubscriptionRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_subscription(
    subscription_id: uuid.UUID, ctx: Reader, response: Response
) -> SubscriptionRead:
    """One subscription with its health (`failing_since`, `disabled_reason`); the `ETag`
    header is its version. Needs `subscriptions:read`. The secret is not included: see
    `GET /subscriptions/{id}/secret`."""
    sub = await service.get_subscription(ctx, subscription_id)
    set_etag(response, sub.version)
    return service.read_model(ctx, sub)


@router.patch(
    "/{subscription_id}",
    summary="Change a webhook subscription",
    response_model=SubscriptionRead,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_subscription(
    subscription_id: uuid.UUID,
    data: SubscriptionUpdate,
    ctx: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> SubscriptionRead:
    """Change the URL, filters, description or `enabled`. Needs `subscriptions:write` and
    `If-Match` with the ETag of your last read (428 without, 412 when stale). Re-enabling a
    disabled subscription sends its queued deliveries at once."""
    sub = await service.update_subscription(ctx, subscription_id, data, if_match)
    set_etag(response, sub.version)
    return service.read_model(ctx, sub)


@router.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Delete a webhook subscription",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_subscription(subscription_id: uuid.UUID, ctx: Writer) -> Response:
    """Delete the subscription, its queued deliveries and its delivery log. Needs
    `subscriptions:write`."""
    await service.delete_subscription(ctx, subscription_id)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/secret",
    summary="Read the signing secret",
    response_model=SecretRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_secret(subscription_id: uuid.UUID, ctx: Writer) -> SecretRead:
    """The current `whsec_` secret. Needs `subscriptions:write` (secrets are not for readers)."""
    return service.secret_read(ctx, await service.get_subscription(ctx, subscription_id))


@router.post(
    "/{subscription_id}/secret/rotate",
    summary="Rotate the signing secret",
    response_model=SecretRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def rotate_secret(
    subscription_id: uuid.UUID,
    ctx: Writer,
    data: RotateSecret | None = None,
) -> SecretRead:
    """Issue a new secret. Needs `subscriptions:write`.

    During the grace period (default 24 h) every delivery carries two signatures in
    `webhook-signature`, one per secret, so a receiver verifies with either: deploy the new
    secret at your own pace, then the old one stops signing."""
    grace = data.grace_period_s if data else None
    return service.secret_read(ctx, await service.rotate_secret(ctx, subscription_id, grace))


@router.post(
    "/{subscription_id}/ping",
    summary="Send a test event now",
    response_model=PingResult,
    responses=problem_responses(401, 403, 404, 422),
)
async def ping(subscription_id: uuid.UUID, ctx: Writer) -> PingResult:
    """POST a signed `kehu.webhook.ping.v1` event to the endpoint right away and answer with
    the outcome (status code, latency, error). It is logged as a delivery but never retried
    and does not count towards the endpoint's health. Needs `subscriptions:write`."""
    sender: Sender | None = getattr(ctx.app_state, "sender", None)
    own = sender is None
    sender = sender or Sender(ctx.app_state.settings)
    try:
        result, detail = await service.ping(ctx, sender, subscription_id)
    finally:
        if own:
            await sender.aclose()
    return PingResult(success=result.ok, delivery=detail)


@router.get(
    "/{subscription_id}/deliveries",
    summary="Delivery log of a subscription",
    response_model=Page[DeliveryRead],
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def list_deliveries(
    subscription_id: uuid.UUID,
    ctx: Reader,
    status: Annotated[DeliveryStatus | None, Query(description="Only this status.")] = None,
    event_type: Annotated[
        str | None, Query(max_length=200, examples=["kehu.complaint.resolved.v1"])
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DeliveryRead]:
    """Deliveries, newest first: status, attempts made, last status code and error, next
    retry. Needs `subscriptions:read`."""
    items, next_cursor = await service.list_deliveries(
        ctx, subscription_id, status, event_type, cursor, limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/{subscription_id}/deliveries/{delivery_id}",
    summary="One delivery with every attempt",
    response_model=DeliveryDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_delivery(
    subscription_id: uuid.UUID, delivery_id: uuid.UUID, ctx: Reader
) -> DeliveryDetail:
    """The delivery, the body it sends, and each attempt with its status code, latency and
    error. Needs `subscriptions:read`."""
    delivery = await service.get_delivery(ctx, subscription_id, delivery_id)
    return await service.delivery_detail(ctx, delivery)


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/replay",
    summary="Replay one delivery",
    response_model=DeliveryDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def replay_delivery(
    subscription_id: uuid.UUID, delivery_id: uuid.UUID, ctx: Writer
) -> DeliveryDetail:
    """Queue the delivery again, whatever its status, with the same `webhook-id` (so a
    receiver that already has it can recognise it) and a fresh retry schedule. Needs
    `subscriptions:write`."""
    return await service.replay_delivery(ctx, subscription_id, delivery_id)


@router.post(
    "/{subscription_id}/replay",
    summary="Replay every delivery since a time",
    response_model=ReplayResult,
    responses=problem_responses(401, 403, 404, 422),
)
async def replay_since(
    subscription_id: uuid.UUID, data: ReplayRequest, ctx: Writer
) -> ReplayResult:
    """Queue again every delivery of this subscription created at or after `since` (e.g.
    after restoring a receiver from backup); they go out in their original order per
    customer. Needs `subscriptions:write`."""
    count = await service.replay_since(ctx, subscription_id, data.since)
    return ReplayResult(replayed=count)
