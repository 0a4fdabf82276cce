"""Messages to customers: queue one, list them with their delivery state, read one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.outreach import repository as repo
from services.outreach import service, views
from services.outreach.api.common import Reader, Writer
from services.outreach.schemas import MessageCreate, MessageRead
from shared.contracts.outreach import MessageStatus
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, Page
from shared.problems import problem_responses

router = APIRouter(tags=["messages"])


@router.post(
    "/messages",
    status_code=201,
    summary="Send a message to a customer",
    response_model=MessageRead,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_message(
    ctx: Writer, body: MessageCreate, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Queue a message from a template (needs `outreach:write`); it answers `queued`.

    The dispatcher then reads the customer's address from profiles and decides: `marketing`
    needs the customer's current consent for the channel (`marketing_email`, `marketing_sms`,
    `marketing_wechat`), else `suppressed` with the reason; at most `OUTREACH_MARKETING_CAP`
    marketing messages per `OUTREACH_MARKETING_CAP_DAYS`; a non-urgent message waits out the
    quiet hours (default 21:00-09:00) in the customer's time zone (`deferred`, `quiet_hours`);
    failures are retried with back-off. Every state change is published (`message.<status>`).
    An unknown template or a purpose that is not the template's is a 422; an erased customer a
    409. Send an `Idempotency-Key` so that a retry queues nothing twice.
    """

    async def create() -> Reply:
        message = await service.create_message(ctx, body)
        return Reply(views.message(ctx, message), 201, {"Location": f"/messages/{message.id}"})

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/messages",
    summary="List messages",
    response_model=Page[MessageRead],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_messages(
    ctx: Reader,
    customer_id: uuid.UUID | None = None,
    status: MessageStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = DEFAULT_LIMIT,
) -> Page[MessageRead]:
    """Messages, newest first, by customer and/or delivery state (needs `outreach:read`;
    recipient, subject and body need `pii:read`)."""
    rows, next_cursor = await repo.list_messages(
        ctx.session, customer_id=customer_id, status=status, cursor=cursor, limit=limit
    )
    return Page(items=await views.shown(ctx, rows), next_cursor=next_cursor)


@router.get(
    "/messages/{message_id}",
    summary="Get a message and its delivery history",
    response_model=MessageRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_message(message_id: uuid.UUID, ctx: Reader) -> MessageRead:
    """One message with every state it went through and why (needs `outreach:read`)."""
    message = await service.get_message(ctx, message_id)
    [shown] = await views.shown(ctx, [message], await repo.states_of(ctx.session, message.id))
    return shown
