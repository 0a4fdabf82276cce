"""Contact persons of organisation customers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Path, Response

from services.profiles import service
from services.profiles.api.common import CustomerId, Reader, Writer
from services.profiles.api.common import router as new_router
from services.profiles.models import Contact
from services.profiles.schemas import ContactCreate, ContactRead, ContactUpdate
from shared.context import RequestContext
from shared.http import IdempotencyKeyHeader, IfMatch, etag_of, set_etag
from shared.idempotency import Reply, idempotent
from shared.problems import problem_responses

router = new_router()
ContactId = Annotated[uuid.UUID, Path(description="The contact's id.")]


def view(ctx: RequestContext, contact: Contact) -> ContactRead:
    return ctx.mask("contact", ContactRead.model_validate(contact, from_attributes=True))


@router.post(
    "/customers/{customer_id}/contacts",
    tags=["contacts"],
    summary="Add a contact person to an organisation",
    status_code=201,
    response_model=ContactRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_contact(
    ctx: Writer,
    customer_id: CustomerId,
    data: ContactCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """A contact person of an organisation customer with their role. Needs `customers:write`;
    persons cannot have contacts (422). Send an `Idempotency-Key` to make retries safe."""

    async def add() -> Reply:
        contact = await service.add_contact(ctx, customer_id, data)
        location = f"/customers/{customer_id}/contacts/{contact.id}"
        headers = {"ETag": etag_of(contact.version), "Location": location}
        return Reply(view(ctx, contact), 201, headers)

    return await idempotent(ctx, idempotency_key, add)


@router.get(
    "/customers/{customer_id}/contacts",
    tags=["contacts"],
    summary="List the contacts of a customer",
    response_model=list[ContactRead],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_contacts(ctx: Reader, customer_id: CustomerId) -> list[ContactRead]:
    """Every contact person, oldest first. Needs `customers:read`; names, e-mail and phone are
    masked and notes left out without `pii:read`."""
    return [view(ctx, c) for c in await service.contacts(ctx, customer_id)]


@router.get(
    "/customers/{customer_id}/contacts/{contact_id}",
    tags=["contacts"],
    summary="Read a contact",
    response_model=ContactRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_contact(
    ctx: Reader, customer_id: CustomerId, contact_id: ContactId, response: Response
) -> ContactRead:
    """One contact person with its `ETag`. Needs `customers:read`; masked without `pii:read`."""
    contact = await service.read_contact(ctx, customer_id, contact_id)
    set_etag(response, contact.version)
    return view(ctx, contact)


@router.patch(
    "/customers/{customer_id}/contacts/{contact_id}",
    tags=["contacts"],
    summary="Update a contact",
    response_model=ContactRead,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_contact(
    ctx: Writer,
    customer_id: CustomerId,
    contact_id: ContactId,
    patch: ContactUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> ContactRead:
    """Change the fields sent. Needs `customers:write` and `If-Match` (428 / 412)."""
    contact = await service.update_contact(ctx, customer_id, contact_id, patch, if_match)
    set_etag(response, contact.version)
    return view(ctx, contact)


@router.delete(
    "/customers/{customer_id}/contacts/{contact_id}",
    tags=["contacts"],
    summary="Remove a contact",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422),
)
async def remove_contact(ctx: Writer, customer_id: CustomerId, contact_id: ContactId) -> Response:
    """Delete the contact person (the removal is kept in the history). Needs `customers:write`."""
    await service.remove_contact(ctx, customer_id, contact_id)
    return Response(status_code=204)
