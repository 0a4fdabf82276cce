"""Bulk import of customers (CSV, JSON or JSON lines)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from services.profiles import service
from services.profiles.api.common import Writer
from services.profiles.api.common import router as new_router
from services.profiles.config import Settings
from services.profiles.schemas import ImportResult
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.problems import problem_responses

router = new_router()

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
    ctx: Writer,
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
    request = ctx.request
    assert request is not None  # an HTTP endpoint always has its request
    settings: Settings = ctx.settings  # type: ignore[assignment]

    async def run() -> Reply:
        rows = service.parse_import(
            await request.body(), request.headers.get("content-type", ""), settings.import_max_rows
        )
        result = await service.import_customers(
            ctx, rows, allow_duplicates, settings.import_batch_size
        )
        return Reply(result, 200)

    return await idempotent(ctx, idempotency_key, run)
