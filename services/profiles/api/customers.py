"""Customers: create, search, read, update, archive, and their change history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Response

from services.profiles import repository as repo
from services.profiles import service
from services.profiles.api.common import (
    Cursor,
    CustomerId,
    HotReader,
    HotWriter,
    Limit,
    PiiReader,
    Writer,
)
from services.profiles.api.common import (
    router as new_router,
)
from services.profiles.schemas import (
    CustomerCreate,
    CustomerRead,
    CustomerStatus,
    CustomerUpdate,
    HistoryRead,
)
from shared.context import RequestContext
from shared.contracts.analytics import LifecycleStage
from shared.contracts.common import Tier, UtcInstant
from shared.contracts.customers import CustomerKind
from shared.http import IdempotencyKeyHeader, IfMatch, etag_of, model_response, set_etag
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, Page
from shared.problems import problem_responses

router = new_router()


async def changed(ctx: RequestContext, response: Response, customer: Any) -> CustomerRead:
    """A customer a write left, with its ETag, as the caller may see it."""
    set_etag(response, customer.version)
    return ctx.mask("customer", await service.read_changed(ctx, customer))


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
    ctx: HotWriter,
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

    async def create() -> Reply:
        customer = await service.create_customer(ctx, data, allow_duplicate)
        headers = {"ETag": etag_of(customer.version), "Location": f"/customers/{customer.id}"}
        return Reply(ctx.mask("customer", customer), 201, headers)

    return await idempotent(ctx, idempotency_key, create)


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
    ctx: HotReader,
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
    created_from: Annotated[UtcInstant | None, Query(description="created_at >= this.")] = None,
    created_to: Annotated[UtcInstant | None, Query(description="created_at < this.")] = None,
    updated_since: Annotated[
        UtcInstant | None,
        Query(
            description="Incremental sync: only customers changed at or after this instant. "
            "Use with `sort=updated_at`, and pass the last item's `updated_at` (minus a few "
            "seconds of overlap) next time."
        ),
    ] = None,
    updated_to: Annotated[UtcInstant | None, Query(description="updated_at < this.")] = None,
    sort: Annotated[SortKey, Query(description="Sort key; `-` for descending.")] = "-created_at",
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
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
        created_from=created_from,
        created_to=created_to,
        updated_from=updated_since,
        updated_to=updated_to,
    )
    reads, next_cursor = await service.list_customers(ctx, filters, sort, cursor, limit)
    return model_response(
        Page[CustomerRead].model_construct(
            items=[ctx.mask("customer", r) for r in reads], next_cursor=next_cursor
        )
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
async def get_customer(ctx: HotReader, customer_id: CustomerId) -> Response:
    """One customer with its read-only insights (tier, lifecycle stage, churn risk). Needs
    `customers:read`; PII is masked without `pii:read`. A merged record has status `merged` and
    `merged_into_id`: follow it."""
    read = await service.read_customer(ctx, customer_id)
    return model_response(ctx.mask("customer", read), headers={"ETag": etag_of(read.version)})


@router.patch(
    "/customers/{customer_id}",
    tags=["customers"],
    summary="Update a customer",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_customer(
    ctx: HotWriter,
    customer_id: CustomerId,
    patch: CustomerUpdate,
    if_match: IfMatch = None,
    allow_duplicate: Annotated[
        bool,
        Query(description="Accept an e-mail or phone that another customer already has."),
    ] = False,
) -> Response:
    """Change only the fields sent. Needs `customers:write` and `If-Match` with the ETag of your
    last read: without it **428**, when stale **412** and nothing changes. A new e-mail or phone
    that another customer has is **409** naming it unless `allow_duplicate=true`. Publishes
    `customer.updated` with the changed field names (and `customer.archived` when `status`
    becomes archived). Every change is kept in the history."""
    read = await service.update_customer(ctx, customer_id, patch, if_match, allow_duplicate)
    return model_response(ctx.mask("customer", read), headers={"ETag": etag_of(read.version)})


@router.delete(
    "/customers/{customer_id}",
    tags=["customers"],
    summary="Archive a customer",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def archive_customer(
    ctx: Writer, customer_id: CustomerId, response: Response, if_match: IfMatch = None
) -> CustomerRead:
    """Archive (soft-delete) the customer: it stays readable with status `archived`; PATCH
    `status=active` restores it. Needs `customers:write`; `If-Match` is checked when sent.
    Archiving an archived customer changes nothing. Publishes `customer.archived`."""
    customer = await service.archive_customer(ctx, customer_id, if_match)
    return await changed(ctx, response, customer)


@router.get(
    "/customers/{customer_id}/history",
    tags=["customers"],
    summary="Change history of a customer",
    response_model=Page[HistoryRead],
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def customer_history(
    ctx: PiiReader,
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
    entries, next_cursor = await service.history(ctx, customer_id, entity, cursor, limit)
    return Page[HistoryRead](
        items=[HistoryRead.model_validate(e, from_attributes=True) for e in entries],
        next_cursor=next_cursor,
    )
