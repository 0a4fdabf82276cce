"""Consent per purpose, with its full history."""

from __future__ import annotations

from typing import Any

from services.profiles import service
from services.profiles.api.common import CustomerId, Reader, Writer
from services.profiles.api.common import router as new_router
from services.profiles.schemas import ConsentChange, ConsentRead, ConsentState
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.problems import problem_responses

router = new_router()


@router.post(
    "/customers/{customer_id}/consents",
    tags=["consent"],
    summary="Grant or withdraw a consent",
    status_code=201,
    response_model=ConsentRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def change_consent(
    ctx: Writer,
    customer_id: CustomerId,
    data: ConsentChange,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Record that the customer granted or withdrew consent for a purpose, when and through
    which source. Every record is kept; the latest per purpose is the current state. Needs
    `customers:write`. Publishes `consent.changed` when the state changes."""

    async def change() -> Reply:
        record = await service.change_consent(ctx, customer_id, data)
        return Reply(ConsentRead.model_validate(record, from_attributes=True), 201)

    return await idempotent(ctx, idempotency_key, change)


@router.get(
    "/customers/{customer_id}/consents",
    tags=["consent"],
    summary="Current consent and its history",
    response_model=ConsentState,
    responses=problem_responses(401, 403, 404, 422),
)
async def consents(ctx: Reader, customer_id: CustomerId) -> ConsentState:
    """The current state per purpose and every change, newest first. Needs `customers:read`.
    A purpose never recorded is not granted."""
    records = await service.consent_history(ctx, customer_id)
    return ConsentState(
        current=[
            ConsentRead.model_validate(r, from_attributes=True)
            for r in service.current_consent(records)
        ],
        history=[ConsentRead.model_validate(r, from_attributes=True) for r in records],
    )
