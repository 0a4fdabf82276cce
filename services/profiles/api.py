"""HTTP routes of the profiles service: parse, call the service layer, shape the response."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.profiles import repository as repo
from services.profiles import service
from services.profiles.config import Settings
from services.profiles.models import Contact, Need, idempotency_keys
from services.profiles.schemas import (
    ConsentChange,
    ConsentRead,
    ConsentState,
    ContactCreate,
    ContactRead,
    ContactUpdate,
    CustomerCreate,
    CustomerRead,
    CustomerStatus,
    CustomerUpdate,
    DuplicateMatch,
    DuplicatePair,
    ExportRead,
    HistoryRead,
    ImportResult,
    MergeRequest,
    MergeResult,
    NeedCreate,
    NeedRead,
    NeedUpdate,
)
from shared.auth import Principal, require
from shared.contracts.analytics import LifecycleStage
from shared.contracts.common import Tier
from shared.contracts.customers import CustomerKind, NeedStatus
from shared.db import SessionDep
from shared.http import Idempotency, IdempotencyKeyHeader, IfMatch, etag_of, set_etag
from shared.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    Page,
    decode_cursor,
    encode_cursor,
)
from shared.problems import problem_responses

router = APIRouter()
Reader = Annotated[Principal, require("customers:read")]
Writer = Annotated[Principal, require("customers:write")]
PiiReader = Annotated[Principal, require("pii:read")]
CustomerId = Annotated[uuid.UUID, Path(description="The customer's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]

OPENAPI_TAGS = [
    {"name": "customers", "description": "The customer archive: create, read, update, archive."},
    {"name": "data quality", "description": "Duplicate candidates and merging."},
    {"name": "contacts", "description": "Contact persons of organisation customers."},
    {"name": "needs", "description": "Business needs and requirements of customers."},
    {"name": "consent", "description": "Consent per purpose, with its full history."},
    {"name": "gdpr", "description": "Data export and erasure of a customer's personal data."},
]


def ctx(request: Request, session: Any, principal: Principal) -> service.Ctx:
    return service.Ctx(session, request.app.state.outbox, principal.subject)


def view(read: CustomerRead, principal: Principal) -> CustomerRead:
    return read if principal.has("pii:read") else service.masked(read)


def contact_view(contact: Contact, principal: Principal) -> ContactRead:
    read = ContactRead.model_validate(contact, from_attributes=True)
    if principal.has("pii:read"):
        return read
    return read.model_copy(
        update={
            "email": service.mask_email(read.email),
            "phone": service.mask_phone(read.phone),
            "notes": None,
        }
    )


async def created_response(
    idem: Idempotency, session: Any, model: BaseModel, version: int, location: str
) -> JSONResponse:
    body = model.model_dump(mode="json")
    headers = {"ETag": etag_of(version), "Location": location}
    await idem.remember(session, 201, body, headers)
    return JSONResponse(body, status_code=201, headers=headers)


# -- customers ---------------------------------------------------------------------------------


@router.post(
    "/customers",
    tags=["customers"],
    summary="Create a customer",
    status_code=201,
    response_model=CustomerRead,
    responses={
        201: {"description": "Created; `Location` and `ETag` headers are set."},
        **problem_responses(401, 403, 409, 422),
    },
)
async def create_customer(
    request: Request,
    session: SessionDep,
    principal: Writer,
    data: CustomerCreate,
    idempotency_key: IdempotencyKeyHeader = None,
    allow_duplicate: Annotated[
        bool,
        Query(description="Create even if a customer with the same e-mail, phone or name exists."),
    ] = False,
) -> Any:
    """Add a person or organisation to the archive. Needs `customers:write`.

    The service assigns a readable `customer_number` (`C-000123`). E-mail is stored
    lower-case, phone in E.164. When a customer with the same e-mail, the same phone or the same
    name within the same company exists, the answer is **409** naming it
    (`existing_customer_id`, `matched_on`, `candidates`); send `allow_duplicate=true` to create
    anyway. Send an `Idempotency-Key` to make retries safe. Publishes `customer.created`.
    """
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (stored := await idem.replay(session, request)) is not None:
        return stored
    customer = await service.create_customer(
        ctx(request, session, principal), data, allow_duplicate
    )
    return await created_response(
        idem,
        session,
        service.to_read(customer, None),
        customer.version,
        f"/customers/{customer.id}",
    )


SortKey = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "customer_number",
    "-customer_number",
    "display_name",
    "-display_name",
]


@router.get(
    "/customers",
    tags=["customers"],
    summary="Search and list customers",
    response_model=Page[CustomerRead],
    responses=problem_responses(400, 401, 403, 422),
)
async def list_customers(
    session: SessionDep,
    principal: Reader,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Text in the name, legal name, customer number, e-mail or phone.",
            examples=["lianhua"],
        ),
    ] = None,
    owner_id: Annotated[str | None, Query(description="Account manager.")] = None,
    external_ref: Annotated[
        str | None, Query(description="Your system's id for the customer.", examples=["erp-1"])
    ] = None,
    tag: Annotated[
        list[str] | None, Query(description="Has every one of these tags (repeatable).")
    ] = None,
    industry: str | None = None,
    region: str | None = None,
    kind: CustomerKind | None = None,
    tier: Annotated[Tier | None, Query(description="ABC tier from analytics.")] = None,
    lifecycle_stage: LifecycleStage | None = None,
    status: Annotated[
        list[CustomerStatus] | None,
        Query(description="Default: active and archived (merged records are hidden)."),
    ] = None,
    created_from: Annotated[datetime | None, Query(description="created_at >= this.")] = None,
    created_to: Annotated[datetime | None, Query(description="created_at < this.")] = None,
    updated_since: Annotated[
        datetime | None,
        Query(
            description="Incremental sync: only customers changed at or after this instant. "
            "Use with `sort=updated_at`, and pass the last item's `updated_at` (minus a few "
            "seconds of overlap) next time."
        ),
    ] = None,
    updated_to: Annotated[datetime | None, Query(description="updated_at < this.")] = None,
    sort: Annotated[SortKey, Query(description="Sort key; `-` for descending.")] = "-created_at",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[CustomerRead]:
    """Customers matching every given filter, in pages. Needs `customers:read`.

    Follow `next_cursor` until it is null. Without `pii:read`, e-mail and phone are masked and
    addresses, notes and custom attributes are left out.
    """
    filters = repo.CustomerFilter(
        owner_id=owner_id,
        external_ref=external_ref,
        tags=tag or [],
        industry=industry,
        region=region,
        kind=kind,
        tier=tier,
        lifecycle_stage=lifecycle_stage,
        statuses=list(status or []),
        q=q,
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_since,
        updated_to=updated_to,
    )
    rows, next_cursor = await repo.list_customers(session, filters, sort, cursor, limit)
    return Page[CustomerRead](
        items=[view(service.to_read(c, i), principal) for c, i in rows], next_cursor=next_cursor
    )


@router.get(
    "/customers/{customer_id}",
    tags=["customers"],
    summary="Read a customer",
    response_model=CustomerRead,
    responses={
        200: {"description": "The customer; `ETag` header set."},
        **problem_responses(401, 403, 404, 422),
    },
)
async def get_customer(
    session: SessionDep, principal: Reader, customer_id: CustomerId, response: Response
) -> CustomerRead:
    """One customer with its read-only insights (tier, lifecycle stage, churn risk). Needs
    `customers:read`; PII is masked without `pii:read`. A merged record has status `merged` and
    `merged_into_id`: follow it."""
    read = await service.read_customer(session, customer_id)
    set_etag(response, read.version)
    return view(read, principal)


@router.patch(
    "/customers/{customer_id}",
    tags=["customers"],
    summary="Update a customer",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_customer(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    patch: CustomerUpdate,
    response: Response,
    if_match: IfMatch = None,
    allow_duplicate: Annotated[
        bool,
        Query(description="Accept an e-mail or phone that another customer already has."),
    ] = False,
) -> CustomerRead:
    """Change only the fields sent. Needs `customers:write` and `If-Match` with the ETag of your
    last read: without it **428**, when stale **412** and nothing changes. A new e-mail or phone
    that another customer has is **409** naming it unless `allow_duplicate=true`. Publishes
    `customer.updated` with the changed field names (and `customer.archived` when `status`
    becomes archived). Every change is kept in the history."""
    customer = await service.update_customer(
        ctx(request, session, principal), customer_id, patch, if_match, allow_duplicate
    )
    insights = await repo.get_insights(session, [customer.id])
    set_etag(response, customer.version)
    return view(service.to_read(customer, insights.get(customer.id)), principal)


@router.delete(
    "/customers/{customer_id}",
    tags=["customers"],
    summary="Archive a customer",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def archive_customer(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    response: Response,
    if_match: IfMatch = None,
) -> CustomerRead:
    """Archive (soft-delete) the customer: it stays readable with status `archived`; PATCH
    `status=active` restores it. Needs `customers:write`; `If-Match` is checked when sent.
    Archiving an archived customer changes nothing. Publishes `customer.archived`."""
    customer = await service.archive_customer(
        ctx(request, session, principal), customer_id, if_match
    )
    insights = await repo.get_insights(session, [customer.id])
    set_etag(response, customer.version)
    return view(service.to_read(customer, insights.get(customer.id)), principal)


@router.get(
    "/customers/{customer_id}/history",
    tags=["customers"],
    summary="Change history of a customer",
    response_model=Page[HistoryRead],
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def customer_history(
    session: SessionDep,
    _: Reader,
    __: PiiReader,
    customer_id: CustomerId,
    entity: Annotated[
        Literal["customer", "contact", "need", "consent"] | None,
        Query(description="Only changes of this kind of record."),
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[HistoryRead]:
    """Who changed which fields, when, with old and new values; newest first. Covers the
    customer, its contacts, needs and consent. Needs `customers:read` and `pii:read` (old
    values may be personal data)."""
    await service.load(session, customer_id)
    position = decode_cursor(cursor)
    before = None
    if position is not None:
        if not isinstance(position.get("before"), int):
            raise InvalidCursor("The cursor is not one this API issued")
        before = position["before"]
    entries = await repo.history(session, customer_id, before, limit + 1, entity)
    next_cursor = encode_cursor({"before": entries[limit - 1].id}) if len(entries) > limit else None
    return Page[HistoryRead](
        items=[HistoryRead.model_validate(e, from_attributes=True) for e in entries[:limit]],
        next_cursor=next_cursor,
    )


# -- data quality ------------------------------------------------------------------------------


@router.get(
    "/customers/{customer_id}/duplicates",
    tags=["data quality"],
    summary="Duplicate candidates of a customer",
    response_model=list[DuplicateMatch],
    responses=problem_responses(401, 403, 404, 422),
)
async def duplicates(
    session: SessionDep, _: Reader, customer_id: CustomerId
) -> list[DuplicateMatch]:
    """Other customers (not merged away) with the same e-mail, the same phone, or the same name
    within the same company (organisations: the same name). Needs `customers:read`."""
    matches = await service.duplicate_candidates(session, customer_id)
    return [
        DuplicateMatch(
            customer_id=c.id,
            customer_number=c.customer_number,
            display_name=c.display_name,
            matched_on=m,
        )
        for c, m in matches
    ]


@router.get(
    "/duplicates",
    tags=["data quality"],
    summary="Duplicate pairs across the archive",
    response_model=Page[DuplicatePair],
    responses=problem_responses(400, 401, 403, 422),
)
async def duplicate_pairs(
    session: SessionDep, _: Reader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Page[DuplicatePair]:
    """Every pair of live (not merged, not erased) customers with the same e-mail, the same
    phone, or the same name within the same company, for clean-up work: review a pair, then
    `POST /customers/{id}/merge`. Needs `customers:read`."""
    position = decode_cursor(cursor)
    after = None
    if position is not None:
        try:
            after = (uuid.UUID(str(position["a"])), uuid.UUID(str(position["b"])))
        except (KeyError, ValueError) as exc:
            raise InvalidCursor("The cursor is not one this API issued") from exc
    pairs = await repo.duplicate_pairs(session, after, limit + 1)
    next_cursor = None
    if len(pairs) > limit:
        pairs = pairs[:limit]
        next_cursor = encode_cursor({"a": str(pairs[-1][0].id), "b": str(pairs[-1][1].id)})

    def match(c: Any, matched_on: list[str]) -> DuplicateMatch:
        return DuplicateMatch.model_validate(
            {
                "customer_id": c.id,
                "customer_number": c.customer_number,
                "display_name": c.display_name,
                "matched_on": matched_on,
            }
        )

    return Page[DuplicatePair](
        items=[DuplicatePair(customer=match(a, m), duplicate=match(b, m)) for a, b, m in pairs],
        next_cursor=next_cursor,
    )


@router.post(
    "/customers/{customer_id}/merge",
    tags=["data quality"],
    summary="Merge a duplicate into this customer",
    response_model=MergeResult,
    responses=problem_responses(401, 403, 404, 422),
)
async def merge(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: Annotated[uuid.UUID, Path(description="The survivor.")],
    data: MergeRequest,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Merge `duplicate_id` into the survivor of the path. Needs `customers:write`.

    Choose per field whose value survives (`survivorship`); by default the survivor's value is
    kept unless it is empty. Tags are united. Contacts, needs and consent records move to the
    survivor; the duplicate keeps its id with status `merged` and `merged_into_id`. With
    `dry_run=true` the answer previews the result and nothing changes. Publishes
    `customer.merged` (other services re-point the duplicate's records) and `customer.updated`
    for changed survivor fields.
    """
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (stored := await idem.replay(session, request)) is not None:
        return stored
    result = await service.merge(ctx(request, session, principal), customer_id, data)
    body = result.model_dump(mode="json")
    await idem.remember(session, 200, body)
    return JSONResponse(body)


# -- bulk import -------------------------------------------------------------------------------

IMPORT_CSV_EXAMPLE = (
    "external_ref,kind,display_name,email,phone,tags,industry\n"
    "erp-1,person,Li Wei,li.wei@example.com,13800138000,vip;wholesale,retail\n"
)
IMPORT_JSON_EXAMPLE = [
    {"external_ref": "erp-1", "display_name": "Li Wei", "email": "li.wei@example.com"},
    {"external_ref": "erp-2", "kind": "organisation", "display_name": "Lianhua Trading"},
]


@router.post(
    "/customers/import",
    tags=["customers"],
    summary="Bulk import customers (CSV or JSON lines)",
    response_model=ImportResult,
    responses=problem_responses(401, 403, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "Up to 10,000 customers, as a JSON array of CustomerCreate objects, "
            "as CSV with a header row of CustomerCreate field names (`tags` separated by `;`, "
            "JSON in `addresses`, `important_dates`, `custom_attributes`), or as JSON lines "
            "(`application/x-ndjson`, one CustomerCreate object per line).",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "maxItems": 10_000,
                        "items": {"$ref": "#/components/schemas/CustomerCreate"},
                    },
                    "example": IMPORT_JSON_EXAMPLE,
                },
                "text/csv": {"schema": {"type": "string"}, "example": IMPORT_CSV_EXAMPLE},
            },
        }
    },
)
async def import_customers(
    request: Request,
    session: SessionDep,
    principal: Writer,
    idempotency_key: IdempotencyKeyHeader = None,
    allow_duplicates: Annotated[
        bool, Query(description="Also create rows whose e-mail or phone already exists.")
    ] = False,
) -> Any:
    """Create many customers at once, with a result per row. Needs `customers:write`.

    Every row needs an `external_ref`: a row whose `external_ref` exists already is reported
    `existing` and not created again, so a failed or repeated import can simply be sent again.
    Invalid rows (and rows with an e-mail or phone of an existing customer, unless
    `allow_duplicates=true`) are reported `error` with each bad field; the other rows are
    stored. Publishes `customer.created` per created customer.
    """
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (stored := await idem.replay(session, request)) is not None:
        return stored
    settings: Settings = request.app.state.settings
    rows = service.parse_import(
        await request.body(), request.headers.get("content-type", ""), settings.import_max_rows
    )
    result = await service.import_customers(
        ctx(request, session, principal), rows, allow_duplicates, settings.import_batch_size
    )
    body = result.model_dump(mode="json")
    await idem.remember(session, 200, body)
    return JSONResponse(body)


# -- contacts ----------------------------------------------------------------------------------

ContactId = Annotated[uuid.UUID, Path(description="The contact's id.")]


@router.post(
    "/customers/{customer_id}/contacts",
    tags=["contacts"],
    summary="Add a contact person to an organisation",
    status_code=201,
    response_model=ContactRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_contact(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    data: ContactCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """A contact person of an organisation customer with their role. Needs `customers:write`;
    persons cannot have contacts (422). Send an `Idempotency-Key` to make retries safe."""
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (stored := await idem.replay(session, request)) is not None:
        return stored
    contact = await service.add_contact(ctx(request, session, principal), customer_id, data)
    return await created_response(
        idem,
        session,
        ContactRead.model_validate(contact, from_attributes=True),
        contact.version,
        f"/customers/{customer_id}/contacts/{contact.id}",
    )


@router.get(
    "/customers/{customer_id}/contacts",
    tags=["contacts"],
    summary="List the contacts of a customer",
    response_model=list[ContactRead],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_contacts(
    session: SessionDep, principal: Reader, customer_id: CustomerId
) -> list[ContactRead]:
    """Every contact person, oldest first. Needs `customers:read`; e-mail and phone are masked
    without `pii:read`."""
    await service.load(session, customer_id)
    return [contact_view(c, principal) for c in await repo.contacts_of(session, [customer_id])]


@router.get(
    "/customers/{customer_id}/contacts/{contact_id}",
    tags=["contacts"],
    summary="Read a contact",
    response_model=ContactRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_contact(
    session: SessionDep,
    principal: Reader,
    customer_id: CustomerId,
    contact_id: ContactId,
    response: Response,
) -> ContactRead:
    """One contact person with its `ETag`. Needs `customers:read`."""
    contact = await service.load_contact(session, customer_id, contact_id)
    set_etag(response, contact.version)
    return contact_view(contact, principal)


@router.patch(
    "/customers/{customer_id}/contacts/{contact_id}",
    tags=["contacts"],
    summary="Update a contact",
    response_model=ContactRead,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_contact(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    contact_id: ContactId,
    patch: ContactUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> ContactRead:
    """Change the fields sent. Needs `customers:write` and `If-Match` (428 / 412)."""
    contact = await service.update_contact(
        ctx(request, session, principal), customer_id, contact_id, patch, if_match
    )
    set_etag(response, contact.version)
    return contact_view(contact, principal)


@router.delete(
    "/customers/{customer_id}/contacts/{contact_id}",
    tags=["contacts"],
    summary="Remove a contact",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422),
)
async def remove_contact(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    contact_id: ContactId,
) -> Response:
    """Delete the contact person (the removal is kept in the history). Needs `customers:write`."""
    await service.remove_contact(ctx(request, session, principal), customer_id, contact_id)
    return Response(status_code=204)


# -- needs -------------------------------------------------------------------------------------

NeedId = Annotated[uuid.UUID, Path(description="The need's id.")]


def need_read(need: Need) -> NeedRead:
    return NeedRead.model_validate(need, from_attributes=True)


@router.post(
    "/customers/{customer_id}/needs",
    tags=["needs"],
    summary="Record a need",
    status_code=201,
    response_model=NeedRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def add_need(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    data: NeedCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Record a business need or requirement with category, priority, status and due date.
    Needs `customers:write`. Publishes `need.recorded`."""
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (stored := await idem.replay(session, request)) is not None:
        return stored
    need = await service.add_need(ctx(request, session, principal), customer_id, data)
    return await created_response(
        idem, session, need_read(need), need.version, f"/customers/{customer_id}/needs/{need.id}"
    )


@router.get(
    "/customers/{customer_id}/needs",
    tags=["needs"],
    summary="List the needs of a customer",
    response_model=list[NeedRead],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_needs(
    session: SessionDep,
    _: Reader,
    customer_id: CustomerId,
    status: Annotated[NeedStatus | None, Query(description="Only needs in this status.")] = None,
) -> list[NeedRead]:
    """The customer's needs, oldest first. Needs `customers:read`."""
    await service.load(session, customer_id)
    return [need_read(n) for n in await repo.needs_of(session, [customer_id], status)]


@router.get(
    "/customers/{customer_id}/needs/{need_id}",
    tags=["needs"],
    summary="Read a need",
    response_model=NeedRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_need(
    session: SessionDep, _: Reader, customer_id: CustomerId, need_id: NeedId, response: Response
) -> NeedRead:
    """One need with its `ETag`. Needs `customers:read`."""
    need = await service.load_need(session, customer_id, need_id)
    set_etag(response, need.version)
    return need_read(need)


@router.patch(
    "/customers/{customer_id}/needs/{need_id}",
    tags=["needs"],
    summary="Update a need",
    response_model=NeedRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_need(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    need_id: NeedId,
    patch: NeedUpdate,
    response: Response,
    if_match: IfMatch = None,
) -> NeedRead:
    """Change the fields sent. Status moves open → in_progress → met | dropped; met or dropped
    needs can be reopened; other moves are **409**. Needs `customers:write` and `If-Match`.
    Publishes `need.updated` with the changed fields."""
    need = await service.update_need(
        ctx(request, session, principal), customer_id, need_id, patch, if_match
    )
    set_etag(response, need.version)
    return need_read(need)


# -- consent -----------------------------------------------------------------------------------


@router.post(
    "/customers/{customer_id}/consents",
    tags=["consent"],
    summary="Grant or withdraw a consent",
    status_code=201,
    response_model=ConsentRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def change_consent(
    request: Request,
    session: SessionDep,
    principal: Writer,
    customer_id: CustomerId,
    data: ConsentChange,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Record that the customer granted or withdrew consent for a purpose, when and through
    which source. Every record is kept; the latest per purpose is the current state. Needs
    `customers:write`. Publishes `consent.changed` when the state changes."""
    idem = Idempotency(idempotency_keys, idempotency_key, principal.subject)
    if (stored := await idem.replay(session, request)) is not None:
        return stored
    record = await service.change_consent(ctx(request, session, principal), customer_id, data)
    body = ConsentRead.model_validate(record, from_attributes=True).model_dump(mode="json")
    await idem.remember(session, 201, body)
    return JSONResponse(body, status_code=201)


@router.get(
    "/customers/{customer_id}/consents",
    tags=["consent"],
    summary="Current consent and its history",
    response_model=ConsentState,
    responses=problem_responses(401, 403, 404, 422),
)
async def consents(session: SessionDep, _: Reader, customer_id: CustomerId) -> ConsentState:
    """The current state per purpose and every change, newest first. Needs `customers:read`.
    A purpose never recorded is not granted."""
    await service.load(session, customer_id)
    records = await repo.consent_history(session, [customer_id])
    return ConsentState(
        current=[
            ConsentRead.model_validate(r, from_attributes=True)
            for r in service.current_consent(records)
        ],
        history=[ConsentRead.model_validate(r, from_attributes=True) for r in records],
    )


# -- GDPR --------------------------------------------------------------------------------------


@router.get(
    "/customers/{customer_id}/export",
    tags=["gdpr"],
    summary="Export everything held about a customer",
    response_model=ExportRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def export(
    session: SessionDep, _: Reader, __: PiiReader, customer_id: CustomerId
) -> ExportRead:
    """Everything profiles holds about the customer (GDPR right of access): the profile,
    records merged into it, contacts, needs, consent history and change history. Needs
    `customers:read` and `pii:read`."""
    customer = await service.load(session, customer_id)
    merged = await repo.merged_into(session, customer.id)
    ids = [customer.id, *(m.id for m in merged)]
    insights = await repo.get_insights(session, ids)
    entries = await repo.history(session, customer.id, None, 100_000)
    for m in merged:
        entries.extend(await repo.history(session, m.id, None, 100_000))
    return ExportRead(
        customer=service.to_read(customer, insights.get(customer.id)),
        merged_records=[service.to_read(m, insights.get(m.id)) for m in merged],
        contacts=[
            ContactRead.model_validate(c, from_attributes=True)
            for c in await repo.contacts_of(session, ids)
        ],
        needs=[need_read(n) for n in await repo.needs_of(session, ids)],
        consent=[
            ConsentRead.model_validate(r, from_attributes=True)
            for r in await repo.consent_history(session, ids)
        ],
        history=[HistoryRead.model_validate(e, from_attributes=True) for e in entries],
    )


@router.post(
    "/customers/{customer_id}/erasure",
    tags=["gdpr"],
    summary="Erase a customer's personal data",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def erase(
    request: Request,
    session: SessionDep,
    principal: Writer,
    __: PiiReader,
    customer_id: CustomerId,
) -> CustomerRead:
    """GDPR erasure: names, e-mail, phone, addresses, notes and custom attributes of the
    customer (and of records merged into it), its contacts and needs are replaced by anonymous
    values, also in the change history; non-identifying facts (number, industry, region, tags,
    consent, needs' category and status) are kept. The customer is archived and cannot change
    any more. Needs `customers:write` and `pii:read`. Publishes `customer.erased` so other
    services scrub their part."""
    customer = await service.erase(ctx(request, session, principal), customer_id)
    insights = await repo.get_insights(session, [customer.id])
    return service.to_read(customer, insights.get(customer.id))
