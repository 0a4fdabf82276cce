"""HTTP routes of the profiles service: parse, call the service layer, shape the response."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.profiles import peers, protection, service
from services.profiles import repository as repo
from services.profiles.config import Settings
from services.profiles.errors import CustomerNotFound
from services.profiles.models import Contact, Customer, Need, idempotency_keys
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
    ErasureStatus,
    ExportRead,
    GdprExport,
    HistoryRead,
    ImportResult,
    MergeRequest,
    MergeResult,
    NeedCreate,
    NeedRead,
    NeedUpdate,
    ServiceErasure,
    ServiceSection,
)
from shared.auth import Principal, require
from shared.contracts.analytics import LifecycleStage
from shared.contracts.common import Tier
from shared.contracts.customers import CustomerKind, NeedStatus
from shared.crypto import mask_email, mask_phone
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
from shared.problems import Forbidden, problem_responses


def purpose(
    x_purpose: Annotated[
        str | None,
        Header(
            description="Why you access the data (e.g. a ticket number); recorded with every "
            "audit entry of the request (first 500 characters).",
            examples=["support ticket T-1042"],
        ),
    ] = None,
) -> None:
    """Documents `X-Purpose` on every operation; `shared.audit` reads it from the request."""


router = APIRouter(dependencies=[Depends(purpose)])
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
    return service.Ctx(
        session,
        request.app.state.outbox,
        principal.subject,
        protection.owner_limit(request, principal),
    )


def view(read: CustomerRead, principal: Principal) -> CustomerRead:
    return read if principal.has("pii:read") else service.masked(read)


def contact_view(contact: Contact, principal: Principal) -> ContactRead:
    read = ContactRead.model_validate(contact, from_attributes=True)
    if principal.has("pii:read"):
        return read
    return read.model_copy(
        update={
            "name": protection.mask_name("person", read.name),
            "email": mask_email(read.email),
            "phone": mask_phone(read.phone),
            "notes": None,
        }
    )


def need_view(need: Need, principal: Principal) -> NeedRead:
    read = need_read(need)
    return read if principal.has("pii:read") else read.model_copy(update={"description": None})


def match_view(c: Any, matched_on: list[str], principal: Principal) -> DuplicateMatch:
    name = (
        c.display_name
        if principal.has("pii:read")
        else protection.mask_name(c.kind, c.display_name)
    )
    return DuplicateMatch.model_validate(
        {
            "customer_id": c.id,
            "customer_number": c.customer_number,
            "display_name": name,
            "matched_on": matched_on,
        }
    )


async def guard(
    request: Request, session: Any, principal: Principal, *customer_ids: uuid.UUID
) -> None:
    """404 for an agent limited to its own customers when it does not own one of these."""
    owner = protection.owner_limit(request, principal)
    if owner is None:
        return
    rows = await session.execute(
        sa.select(Customer.id, Customer.owner_id).where(Customer.id.in_(customer_ids))
    )
    owners = {cid: owner_id for cid, owner_id in rows.all()}
    for cid in customer_ids:
        if owners.get(cid) != owner:
            raise CustomerNotFound(f"Customer {cid} does not exist", customer_id=str(cid))


async def audit_read(
    request: Request,
    session: Any,
    principal: Principal,
    resource: str,
    customer_ids: Any,
    fields: list[str] | None = None,
) -> None:
    """Record that unmasked personal data went to a caller with `pii:read`."""
    if principal.has("pii:read"):
        await protection.audit(
            session,
            request,
            principal,
            "read_pii",
            resource,
            customer_ids,
            fields if fields is not None else protection.CUSTOMER_PII_FIELDS,
        )


async def audit_change(
    request: Request,
    session: Any,
    principal: Principal,
    action: str,
    resource: str,
    customer_ids: Any,
    fields: Any = (),
    resource_id: Any = None,
) -> None:
    await protection.audit(
        session, request, principal, action, resource, customer_ids, sorted(fields), resource_id
    )


async def created_response(
    idem: Idempotency, session: Any, model: BaseModel, version: int, location: str
) -> JSONResponse:
    body = model.model_dump(mode="json")
    headers = {"ETag": etag_of(version), "Location": location}
    await idem.remember(session, 201, protection.seal_body(body), headers)
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
        return protection.unseal_replay(stored)
    owner = protection.owner_limit(request, principal)
    if owner is not None:
        if data.owner_id not in (None, owner):
            raise Forbidden("Agents may create only customers they own (owner_id)")
        data = data.model_copy(update={"owner_id": owner})
    customer = await service.create_customer(
        ctx(request, session, principal), data, allow_duplicate
    )
    await audit_change(
        request, session, principal, "create", "customer", [customer.id], data.model_fields_set
    )
    return await created_response(
        idem,
        session,
        view(service.to_read(customer, None), principal),
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
    request: Request,
    session: SessionDep,
    principal: Reader,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Substring of the customer number, an organisation's name or the "
            "company name; or exactly a full name, e-mail or phone (personal data is "
            "encrypted and matched only as a whole, and only for callers with `pii:read`).",
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

    Follow `next_cursor` until it is null. Without `pii:read`, e-mail and phone are masked,
    persons' names shortened to an initial and addresses, notes and custom attributes left out.

    Text search (`q`): personal data is encrypted at rest, so `q` finds customers by a
    **substring** of the customer number, an organisation's name or the company name, and by
    the **exact** full name, e-mail (any case) or phone (any notation, e.g. `139 1234 5678`)
    through keyed blind indexes; parts of e-mails, phones or persons' names are not searchable.
    `sort=display_name` orders organisations by name; persons (whose names are encrypted) come
    after them. Agents limited to their own customers (`agents_own_customers_only`) see only
    those. Every customer returned unmasked is recorded in the audit log.
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
        q_personal=principal.has("pii:read"),
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_since,
        updated_to=updated_to,
    )
    owner = protection.owner_limit(request, principal)
    if owner is not None:
        if owner_id not in (None, owner):
            return Page[CustomerRead](items=[], next_cursor=None)
        filters.owner_id = owner
    rows, next_cursor = await repo.list_customers(session, filters, sort, cursor, limit)
    await audit_read(request, session, principal, "customer", [c.id for c, _ in rows])
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
    request: Request,
    session: SessionDep,
    principal: Reader,
    customer_id: CustomerId,
    response: Response,
) -> CustomerRead:
    """One customer with its read-only insights (tier, lifecycle stage, churn risk). Needs
    `customers:read`; PII is masked without `pii:read`. A merged record has status `merged` and
    `merged_into_id`: follow it."""
    await guard(request, session, principal, customer_id)
    read = await service.read_customer(session, customer_id)
    await audit_read(request, session, principal, "customer", [customer_id])
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
    await guard(request, session, principal, customer_id)
    customer = await service.update_customer(
        ctx(request, session, principal), customer_id, patch, if_match, allow_duplicate
    )
    await audit_change(
        request, session, principal, "update", "customer", [customer_id], patch.model_fields_set
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
    await guard(request, session, principal, customer_id)
    customer = await service.archive_customer(
        ctx(request, session, principal), customer_id, if_match
    )
    await audit_change(request, session, principal, "delete", "customer", [customer_id], ["status"])
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
    request: Request,
    session: SessionDep,
    principal: Reader,
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
    await guard(request, session, principal, customer_id)
    await service.load(session, customer_id)
    position = decode_cursor(cursor)
    before = None
    if position is not None:
        if not isinstance(position.get("before"), int):
            raise InvalidCursor("The cursor is not one this API issued")
        before = position["before"]
    entries = await repo.history(session, customer_id, before, limit + 1, entity)
    next_cursor = encode_cursor({"before": entries[limit - 1].id}) if len(entries) > limit else None
    await audit_read(request, session, principal, "history", [customer_id], ["changes"])
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
    request: Request, session: SessionDep, principal: Reader, customer_id: CustomerId
) -> list[DuplicateMatch]:
    """Other customers (not merged away) with the same e-mail, the same phone, or the same name
    within the same company (organisations: the same name). Needs `customers:read`; persons'
    names are masked without `pii:read`. Compared through keyed blind indexes of the encrypted
    values."""
    await guard(request, session, principal, customer_id)
    owner = protection.owner_limit(request, principal)
    matches = await service.duplicate_candidates(session, customer_id, owner)
    await audit_read(
        request, session, principal, "duplicates", [c.id for c, _ in matches], ["display_name"]
    )
    return [match_view(c, m, principal) for c, m in matches]


@router.get(
    "/duplicates",
    tags=["data quality"],
    summary="Duplicate pairs across the archive",
    response_model=Page[DuplicatePair],
    responses=problem_responses(400, 401, 403, 422),
)
async def duplicate_pairs(
    request: Request,
    session: SessionDep,
    principal: Reader,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
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
    owner = protection.owner_limit(request, principal)
    pairs = await repo.duplicate_pairs(session, after, limit + 1, owner)
    next_cursor = None
    if len(pairs) > limit:
        pairs = pairs[:limit]
        next_cursor = encode_cursor({"a": str(pairs[-1][0].id), "b": str(pairs[-1][1].id)})

    ids = [c.id for a, b, _ in pairs for c in (a, b)]
    await audit_read(request, session, principal, "duplicates", ids, ["display_name"])
    return Page[DuplicatePair](
        items=[
            DuplicatePair(
                customer=match_view(a, m, principal), duplicate=match_view(b, m, principal)
            )
            for a, b, m in pairs
        ],
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
        return protection.unseal_replay(stored)
    await guard(request, session, principal, customer_id, data.duplicate_id)
    result = await service.merge(ctx(request, session, principal), customer_id, data)
    ids = [customer_id, data.duplicate_id]
    if data.dry_run:
        await audit_read(request, session, principal, "merge_preview", ids)
    else:
        await audit_change(
            request, session, principal, "merge", "customer", ids, result.changed_fields
        )
    result = result.model_copy(update={"survivor": view(result.survivor, principal)})
    body = result.model_dump(mode="json")
    await idem.remember(session, 200, protection.seal_body(body))
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
        return protection.unseal_replay(stored)
    settings: Settings = request.app.state.settings
    rows = service.parse_import(
        await request.body(), request.headers.get("content-type", ""), settings.import_max_rows
    )
    owner = protection.owner_limit(request, principal)
    if owner is not None:
        rows = [limit_owner(row, owner) for row in rows]
    result = await service.import_customers(
        ctx(request, session, principal), rows, allow_duplicates, settings.import_batch_size
    )
    created = [r.customer_id for r in result.rows if r.status == "created" and r.customer_id]
    sent = {key for row in rows if isinstance(row, dict) for key in row}
    fields = sorted(sent & set(service.CUSTOMER_FIELDS))
    await audit_change(request, session, principal, "import", "customer", created, fields)
    body = result.model_dump(mode="json")
    await idem.remember(session, 200, protection.seal_body(body))
    return JSONResponse(body)


def limit_owner(row: dict[str, Any] | str, owner: str) -> dict[str, Any] | str:
    """An agent limited to its own customers imports only customers it owns."""
    if isinstance(row, str) or row.get("owner_id") in (None, "", owner):
        return row if isinstance(row, str) else {**row, "owner_id": owner}
    return "agents may import only customers they own (owner_id must be your subject)"


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
        return protection.unseal_replay(stored)
    await guard(request, session, principal, customer_id)
    contact = await service.add_contact(ctx(request, session, principal), customer_id, data)
    await audit_change(
        request,
        session,
        principal,
        "create",
        "contact",
        [customer_id],
        data.model_fields_set,
        contact.id,
    )
    return await created_response(
        idem,
        session,
        contact_view(contact, principal),
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
    request: Request, session: SessionDep, principal: Reader, customer_id: CustomerId
) -> list[ContactRead]:
    """Every contact person, oldest first. Needs `customers:read`; names, e-mail and phone are
    masked and notes left out without `pii:read`."""
    await guard(request, session, principal, customer_id)
    await service.load(session, customer_id)
    contacts = await repo.contacts_of(session, [customer_id])
    if contacts:
        await audit_read(
            request, session, principal, "contact", [customer_id], list(Contact.PII_COLUMNS)
        )
    return [contact_view(c, principal) for c in contacts]


@router.get(
    "/customers/{customer_id}/contacts/{contact_id}",
    tags=["contacts"],
    summary="Read a contact",
    response_model=ContactRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_contact(
    request: Request,
    session: SessionDep,
    principal: Reader,
    customer_id: CustomerId,
    contact_id: ContactId,
    response: Response,
) -> ContactRead:
    """One contact person with its `ETag`. Needs `customers:read`; masked without `pii:read`."""
    await guard(request, session, principal, customer_id)
    contact = await service.load_contact(session, customer_id, contact_id)
    await audit_read(
        request, session, principal, "contact", [customer_id], list(Contact.PII_COLUMNS)
    )
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
    await guard(request, session, principal, customer_id)
    contact = await service.update_contact(
        ctx(request, session, principal), customer_id, contact_id, patch, if_match
    )
    await audit_change(
        request,
        session,
        principal,
        "update",
        "contact",
        [customer_id],
        patch.model_fields_set,
        contact_id,
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
    await guard(request, session, principal, customer_id)
    await service.remove_contact(ctx(request, session, principal), customer_id, contact_id)
    await audit_change(
        request, session, principal, "delete", "contact", [customer_id], (), contact_id
    )
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
        return protection.unseal_replay(stored)
    await guard(request, session, principal, customer_id)
    need = await service.add_need(ctx(request, session, principal), customer_id, data)
    await audit_change(
        request,
        session,
        principal,
        "create",
        "need",
        [customer_id],
        data.model_fields_set,
        need.id,
    )
    return await created_response(
        idem,
        session,
        need_view(need, principal),
        need.version,
        f"/customers/{customer_id}/needs/{need.id}",
    )


@router.get(
    "/customers/{customer_id}/needs",
    tags=["needs"],
    summary="List the needs of a customer",
    response_model=list[NeedRead],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_needs(
    request: Request,
    session: SessionDep,
    principal: Reader,
    customer_id: CustomerId,
    status: Annotated[NeedStatus | None, Query(description="Only needs in this status.")] = None,
) -> list[NeedRead]:
    """The customer's needs, oldest first. Needs `customers:read`; the free-text description is
    left out without `pii:read`."""
    await guard(request, session, principal, customer_id)
    await service.load(session, customer_id)
    needs = await repo.needs_of(session, [customer_id], status)
    if needs:
        await audit_read(request, session, principal, "need", [customer_id], ["description"])
    return [need_view(n, principal) for n in needs]


@router.get(
    "/customers/{customer_id}/needs/{need_id}",
    tags=["needs"],
    summary="Read a need",
    response_model=NeedRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_need(
    request: Request,
    session: SessionDep,
    principal: Reader,
    customer_id: CustomerId,
    need_id: NeedId,
    response: Response,
) -> NeedRead:
    """One need with its `ETag`. Needs `customers:read`; no description without `pii:read`."""
    await guard(request, session, principal, customer_id)
    need = await service.load_need(session, customer_id, need_id)
    await audit_read(request, session, principal, "need", [customer_id], ["description"])
    set_etag(response, need.version)
    return need_view(need, principal)


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
    await guard(request, session, principal, customer_id)
    need = await service.update_need(
        ctx(request, session, principal), customer_id, need_id, patch, if_match
    )
    await audit_change(
        request,
        session,
        principal,
        "update",
        "need",
        [customer_id],
        patch.model_fields_set,
        need_id,
    )
    set_etag(response, need.version)
    return need_view(need, principal)


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
        return protection.unseal_replay(stored)
    await guard(request, session, principal, customer_id)
    record = await service.change_consent(ctx(request, session, principal), customer_id, data)
    await audit_change(
        request, session, principal, "update", "consent", [customer_id], [data.purpose]
    )
    body = ConsentRead.model_validate(record, from_attributes=True).model_dump(mode="json")
    await idem.remember(session, 201, protection.seal_body(body))
    return JSONResponse(body, status_code=201)


@router.get(
    "/customers/{customer_id}/consents",
    tags=["consent"],
    summary="Current consent and its history",
    response_model=ConsentState,
    responses=problem_responses(401, 403, 404, 422),
)
async def consents(
    request: Request, session: SessionDep, principal: Reader, customer_id: CustomerId
) -> ConsentState:
    """The current state per purpose and every change, newest first. Needs `customers:read`.
    A purpose never recorded is not granted."""
    await guard(request, session, principal, customer_id)
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


async def profiles_export(session: Any, customer_id: uuid.UUID) -> ExportRead:
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


@router.get(
    "/customers/{customer_id}/export",
    tags=["gdpr"],
    summary="Export everything profiles holds about a customer",
    response_model=ExportRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def export(
    request: Request,
    session: SessionDep,
    principal: Reader,
    __: PiiReader,
    customer_id: CustomerId,
) -> ExportRead:
    """Everything profiles holds about the customer (GDPR right of access): the profile,
    records merged into it, contacts, needs, consent history and change history. Needs
    `customers:read` and `pii:read`; recorded in the audit log. For every service at once use
    `GET /customers/{id}/gdpr-export`."""
    await guard(request, session, principal, customer_id)
    result = await profiles_export(session, customer_id)
    await audit_change(request, session, principal, "export", "customer", [customer_id])
    return result


@router.get(
    "/customers/{customer_id}/gdpr-export",
    tags=["gdpr"],
    summary="Export everything every service holds about a customer",
    response_model=GdprExport,
    responses=problem_responses(401, 403, 404, 422),
)
async def gdpr_export(
    request: Request,
    session: SessionDep,
    principal: Reader,
    __: PiiReader,
    customer_id: CustomerId,
) -> GdprExport:
    """One answer to a GDPR access request: profiles' own export plus the export of every other
    service holding customer data (interactions, complaints, analytics; subscriptions holds
    none), each in its own section with its status. A service that is down, slow (timeout
    `PROFILES_PEER_TIMEOUT_S`) or failing is reported as `unavailable` / `error` in its section;
    the request itself still succeeds, so check `complete`. Needs `customers:read` and
    `pii:read`; recorded in the audit log."""
    await guard(request, session, principal, customer_id)
    own = await profiles_export(session, customer_id)
    settings: Settings = request.app.state.settings
    sections = await peers.fetch_all(settings, f"/customers/{customer_id}/export")
    await audit_change(request, session, principal, "export", "customer", [customer_id])
    return GdprExport(
        customer_id=customer_id,
        complete=all(s.status in ("ok", "not_found") for s in sections),
        services=[
            ServiceSection(service="profiles", status="ok", data=own.model_dump(mode="json")),
            *sections,
        ],
    )


@router.get(
    "/customers/{customer_id}/erasure",
    tags=["gdpr"],
    summary="Erasure status of a customer in every service",
    response_model=ErasureStatus,
    responses=problem_responses(401, 403, 404, 422),
)
async def erasure_status(
    request: Request, session: SessionDep, principal: Reader, customer_id: CustomerId
) -> ErasureStatus:
    """Whether each service has scrubbed the customer's personal data after
    `POST /customers/{id}/erasure` (the others do it when they consume `customer.erased`):
    profiles itself plus every other service's `GET /customers/{id}/erasure`. `complete` is
    true once every service reports `erased`; an unreachable service is reported with status
    `unavailable` and keeps `complete` false. Needs `customers:read`."""
    await guard(request, session, principal, customer_id)
    customer = await service.load(session, customer_id)
    settings: Settings = request.app.state.settings
    sections = await peers.fetch_all(settings, f"/customers/{customer_id}/erasure")
    services = [
        ServiceErasure(
            service="profiles",
            status="ok",
            erased=customer.erased_at is not None,
            erased_at=customer.erased_at,
        ),
        *(peers.erasure_of(section) for section in sections),
    ]
    return ErasureStatus(
        customer_id=customer_id,
        complete=all(s.erased for s in services),
        services=services,
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
    services scrub their part; follow progress with `GET /customers/{id}/erasure`."""
    await guard(request, session, principal, customer_id)
    customer = await service.erase(ctx(request, session, principal), customer_id)
    await audit_change(
        request,
        session,
        principal,
        "erase",
        "customer",
        [customer_id],
        protection.CUSTOMER_PII_FIELDS,
    )
    insights = await repo.get_insights(session, [customer.id])
    return service.to_read(customer, insights.get(customer.id))
