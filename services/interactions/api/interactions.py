"""Interactions: every contact with a customer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.interactions import repository as repo
from services.interactions import schemas, service
from services.interactions.api.common import (
    ETAG_HEADER,
    LIST_ERRORS,
    READ_ERRORS,
    UPDATE_ERRORS,
    WRITE_ERRORS,
    Cursor,
    CustomerFilter,
    InteractionsCreator,
    InteractionsReader,
    InteractionsWriter,
    Limit,
    Since,
    Until,
    created_headers,
    interaction_read,
    shown,
)
from shared.http import IdempotencyKeyHeader, IfMatch, check_if_match, set_etag
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, Page

router = APIRouter(prefix="/interactions", tags=["interactions"])


@router.post(
    "",
    status_code=201,
    summary="Log an interaction",
    response_model=schemas.InteractionRead,
    responses={201: {"headers": ETAG_HEADER}, **WRITE_ERRORS},
)
async def log_interaction(
    ctx: InteractionsCreator,
    body: schemas.InteractionCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record a contact with a customer (needs `interactions:write`).

    The customer does not have to be known to this service yet. Answered contacts (any outcome
    except `no_answer`) move the customer's last contact and so the next planned revisit.
    Publishes `interaction.logged`. Send `Idempotency-Key` to make retries safe. A customer
    whose personal data was erased gets no new records (409).
    """

    async def create() -> Reply:
        interaction = await service.log_interaction(ctx, body)
        headers = created_headers(interaction, "/interactions")
        return Reply(ctx.mask("interaction", interaction), 201, headers)

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/{interaction_id}",
    summary="Get an interaction",
    response_model=schemas.InteractionRead,
    responses={200: {"headers": ETAG_HEADER}, **READ_ERRORS},
)
async def get_interaction(
    interaction_id: uuid.UUID, response: Response, ctx: InteractionsReader
) -> schemas.InteractionRead:
    """One interaction (needs `interactions:read`; names and free text need `pii:read`)."""
    interaction = await service.get_interaction(ctx, interaction_id)
    set_etag(response, interaction.version)
    [shown_one] = await shown(ctx, "interaction", [interaction], interaction_read)
    return shown_one


@router.get(
    "",
    summary="List interactions",
    response_model=Page[schemas.InteractionRead],
    responses=LIST_ERRORS,
)
async def list_interactions(
    ctx: InteractionsReader,
    customer_id: CustomerFilter = None,
    channel: Annotated[
        list[schemas.Channel] | None, Query(description="Any of these channels.")
    ] = None,
    direction: schemas.Direction | None = None,
    agent_id: Annotated[str | None, Query(max_length=200)] = None,
    outcome: Annotated[str | None, Query(max_length=50)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.InteractionRead]:
    """Interactions, newest first, filtered (needs `interactions:read`)."""
    rows, next_cursor = await repo.list_interactions(
        ctx.session,
        customer_id=customer_id,
        channels=channel,
        direction=direction,
        agent_id=agent_id,
        outcome=outcome,
        window=(since, until),
        cursor=cursor,
        limit=limit,
    )
    return Page(
        items=await shown(ctx, "interaction", rows, interaction_read), next_cursor=next_cursor
    )


@router.patch(
    "/{interaction_id}",
    summary="Correct an interaction",
    response_model=schemas.InteractionRead,
    responses={200: {"headers": ETAG_HEADER}, **UPDATE_ERRORS},
)
async def correct_interaction(
    interaction_id: uuid.UUID,
    body: schemas.InteractionUpdate,
    response: Response,
    ctx: InteractionsWriter,
    if_match: IfMatch = None,
) -> schemas.InteractionRead:
    """Correct fields of a logged interaction (needs `interactions:write`).

    Send `If-Match` with the ETag of your last read: without it 428, if it changed since 412.
    Only the fields sent change. Corrections are not re-published as events.
    """
    interaction = await service.get_interaction(ctx, interaction_id, lock=True)
    check_if_match(if_match, interaction.version)
    interaction = await service.correct_interaction(ctx, interaction, body)
    set_etag(response, interaction.version)
    return interaction_read(ctx, interaction)
