"""Routes of the subscriptions service: parse, call the service layer, map to responses."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from services.subscriptions import service
from services.subscriptions.delivery import Sender
from services.subscriptions.models import Subscription, idempotency_keys
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
from shared.auth import Principal, require
from shared.db import SessionDep
from shared.http import Idempotency, IdempotencyKeyHeader, IfMatch, set_etag
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page
from shared.problems import problem_responses

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
Reader = Annotated[Principal, require("subscriptions:read")]
Writer = Annotated[Principal, require("subscriptions:write")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]


def _read(sub: Subscription) -> SubscriptionRead:
    read = SubscriptionRead.model_validate(sub)
    read.previous_secret_expires_at = service.previous_secret_expiry(sub)
    return read


@router.post(
    "",
    status_code=201,
    summary="Create a webhook subscription",
    response_model=SubscriptionCreated,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_subscription(
    request: Request,
    response: Response,
    session: SessionDep,
    data: SubscriptionCreate,
    principal: Writer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> SubscriptionCreated | JSONResponse:
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
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (stored := await idem.replay(session, request)) is not None:
        return stored
    sub = await service.create_subscription(
        session, request.app.state.settings, data, principal.subject
    )
    created = SubscriptionCreated(**_read(sub).model_dump(), secret=sub.secret)
    headers = {"ETag": f'"{sub.version}"', "Location": f"/subscriptions/{sub.id}"}
    await idem.remember(session, 201, created.model_dump(mode="json"), headers)
    response.headers.update(headers)
    return created


@router.get(
    "",
    summary="List webhook subscriptions",
    response_model=Page[SubscriptionRead],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_subscriptions(
    session: SessionDep,
    _: Reader,
    enabled: Annotated[bool | None, Query(description="Only enabled (or disabled) ones.")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[SubscriptionRead]:
    """Subscriptions, oldest first, with cursor pagination. Needs `subscriptions:read`."""
    rows, next_cursor = await service.list_subscriptions(session, enabled, cursor, limit)
    return Page(items=[_read(s) for s in rows], next_cursor=next_cursor)


@router.get(
    "/{subscription_id}",
    summary="Read a webhook subscription",
    response_model=SubscriptionRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_subscription(
    subscription_id: uuid.UUID, session: SessionDep, response: Response, _: Reader
) -> SubscriptionRead:
    """One subscription with its health (`failing_since`, `disabled_reason`); the `ETag`
    header is its version. Needs `subscriptions:read`. The secret is not included: see
    `GET /subscriptions/{id}/secret`."""
    sub = await service.get_subscription(session, subscription_id)
    set_etag(response, sub.version)
    return _read(sub)


@router.patch(
    "/{subscription_id}",
    summary="Change a webhook subscription",
    response_model=SubscriptionRead,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_subscription(
    subscription_id: uuid.UUID,
    data: SubscriptionUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    _: Writer,
    if_match: IfMatch = None,
) -> SubscriptionRead:
    """Change the URL, filters, description or `enabled`. Needs `subscriptions:write` and
    `If-Match` with the ETag of your last read (428 without, 412 when stale). Re-enabling a
    disabled subscription sends its queued deliveries at once."""
    sub = await service.update_subscription(
        session, request.app.state.settings, subscription_id, data, if_match
    )
    set_etag(response, sub.version)
    return _read(sub)


@router.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Delete a webhook subscription",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_subscription(
    subscription_id: uuid.UUID, session: SessionDep, _: Writer
) -> Response:
    """Delete the subscription, its queued deliveries and its delivery log. Needs
    `subscriptions:write`."""
    await service.delete_subscription(session, subscription_id)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/secret",
    summary="Read the signing secret",
    response_model=SecretRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_secret(subscription_id: uuid.UUID, session: SessionDep, _: Writer) -> SecretRead:
    """The current `whsec_` secret. Needs `subscriptions:write` (secrets are not for readers)."""
    sub = await service.get_subscription(session, subscription_id)
    return SecretRead(
        secret=sub.secret, previous_secret_expires_at=service.previous_secret_expiry(sub)
    )


@router.post(
    "/{subscription_id}/secret/rotate",
    summary="Rotate the signing secret",
    response_model=SecretRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def rotate_secret(
    subscription_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    _: Writer,
    data: RotateSecret | None = None,
) -> SecretRead:
    """Issue a new secret. Needs `subscriptions:write`.

    During the grace period (default 24 h) every delivery carries two signatures in
    `webhook-signature`, one per secret, so a receiver verifies with either: deploy the new
    secret at your own pace, then the old one stops signing."""
    grace = data.grace_period_s if data else None
    sub = await service.rotate_secret(session, request.app.state.settings, subscription_id, grace)
    return SecretRead(
        secret=sub.secret, previous_secret_expires_at=service.previous_secret_expiry(sub)
    )


@router.post(
    "/{subscription_id}/ping",
    summary="Send a test event now",
    response_model=PingResult,
    responses=problem_responses(401, 403, 404, 422),
)
async def ping(
    subscription_id: uuid.UUID, request: Request, session: SessionDep, _: Writer
) -> PingResult:
    """POST a signed `kehu.webhook.ping.v1` event to the endpoint right away and answer with
    the outcome (status code, latency, error). It is logged as a delivery but never retried
    and does not count towards the endpoint's health. Needs `subscriptions:write`."""
    state = request.app.state
    sender: Sender | None = getattr(state, "sender", None)
    own = sender is None
    sender = sender or Sender(state.settings)
    try:
        result, detail = await service.ping(
            session, state.settings, state.outbox, sender, subscription_id
        )
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
    session: SessionDep,
    _: Reader,
    status: Annotated[DeliveryStatus | None, Query(description="Only this status.")] = None,
    event_type: Annotated[
        str | None, Query(max_length=200, examples=["kehu.complaint.resolved.v1"])
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[DeliveryRead]:
    """Deliveries, newest first: status, attempts made, last status code and error, next
    retry. Needs `subscriptions:read`."""
    rows, next_cursor = await service.list_deliveries(
        session, subscription_id, status, event_type, cursor, limit
    )
    return Page(
        items=[
            DeliveryRead.model_validate(d).model_copy(
                update={"next_attempt_at": d.next_attempt_at if d.status == "pending" else None}
            )
            for d in rows
        ],
        next_cursor=next_cursor,
    )


@router.get(
    "/{subscription_id}/deliveries/{delivery_id}",
    summary="One delivery with every attempt",
    response_model=DeliveryDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_delivery(
    subscription_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, _: Reader
) -> DeliveryDetail:
    """The delivery, the body it sends, and each attempt with its status code, latency and
    error. Needs `subscriptions:read`."""
    delivery = await service.get_delivery(session, subscription_id, delivery_id)
    return await service.delivery_detail(session, delivery)


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/replay",
    summary="Replay one delivery",
    response_model=DeliveryDetail,
    responses=problem_responses(401, 403, 404, 422),
)
async def replay_delivery(
    subscription_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, _: Writer
) -> DeliveryDetail:
    """Queue the delivery again, whatever its status, with the same `webhook-id` (so a
    receiver that already has it can recognise it) and a fresh retry schedule. Needs
    `subscriptions:write`."""
    delivery = await service.replay_delivery(session, subscription_id, delivery_id)
    return await service.delivery_detail(session, delivery)


@router.post(
    "/{subscription_id}/replay",
    summary="Replay every delivery since a time",
    response_model=ReplayResult,
    responses=problem_responses(401, 403, 404, 422),
)
async def replay_since(
    subscription_id: uuid.UUID, data: ReplayRequest, session: SessionDep, _: Writer
) -> ReplayResult:
    """Queue again every delivery of this subscription created at or after `since` (e.g.
    after restoring a receiver from backup); they go out in their original order per
    customer. Needs `subscriptions:write`."""
    count = await service.replay_since(session, subscription_id, data.since)
    return ReplayResult(replayed=count)
