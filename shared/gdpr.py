"""One GDPR contract for every service that holds per-customer data, mounted by `ServiceSpec.gdpr`.

    GET /customers/{customer_id}/export    what this service holds (scopes customers:read, pii:read)
    GET /customers/{customer_id}/erasure   whether it erased the customer (customers:read)

A service that does not know the customer says so explicitly: `status: "holds_nothing"`, with a
200, never a 404 (a 404 means "no such route": the peer is misconfigured, an error). Profiles
assembles these documents into the data subject's full export and erasure report; it is
`complete` only when every peer answered `ok` / `holds_nothing` (export) or `erased` /
`holds_nothing` (erasure).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from shared.context import RequestContext, context
from shared.problems import problem_responses

ExportStatus = Literal["ok", "holds_nothing"]
ErasureState = Literal["erased", "pending", "holds_nothing"]


class GdprDocument(BaseModel):
    """What one service holds about one customer (GDPR right of access)."""

    service: str = Field(examples=["interactions"])
    customer_id: uuid.UUID
    status: ExportStatus = Field(
        description="`ok`: `data` holds the records; `holds_nothing`: the service keeps nothing "
        "about this customer (not an error)."
    )
    exported_at: datetime
    erased_at: datetime | None = Field(None, description="When the service erased the customer.")
    data: dict[str, Any] = Field(
        default_factory=dict, description="The service's records of the customer, by kind."
    )
    definitions: dict[str, str] = Field(
        default_factory=dict,
        description="How derived figures in `data` were produced (profiling transparency).",
    )


class ErasureReport(BaseModel):
    """Whether one service has erased the customer's personal data, and what it kept."""

    service: str = Field(examples=["complaints"])
    customer_id: uuid.UUID
    status: ErasureState = Field(
        description="`erased`: done; `pending`: the service holds the customer's data and has not "
        "processed `customer.erased` yet; `holds_nothing`: nothing to erase."
    )
    erased: bool = Field(
        description="True when nothing identifying is left (`erased` or `holds_nothing`)."
    )
    erased_at: datetime | None = None
    kept: list[str] = Field(
        default_factory=list,
        description="What stays after erasure: anonymous facts kept for the aggregates.",
    )


@dataclass
class Holding:
    """What a service's export function found: its records, and when it erased the customer."""

    data: dict[str, Any]
    erased_at: datetime | None = None

    @property
    def empty(self) -> bool:
        return not any(self.data.values()) and self.erased_at is None


@dataclass
class GdprSpec:
    """A service's part of GDPR: how to export a customer, and how to tell its erasure."""

    service: str
    export: Callable[[RequestContext, uuid.UUID], Awaitable[Holding]]
    # (holds anything about the customer, erased at)
    erasure: Callable[[RequestContext, uuid.UUID], Awaitable[tuple[bool, datetime | None]]]
    kept_after_erasure: list[str] = field(default_factory=list)
    definitions: dict[str, str] = field(default_factory=dict)
    export_description: str = ""
    erasure_route: bool = True  # profiles serves the all-services erasure report there instead


CustomerId = Annotated[uuid.UUID, Path(description="The customer's id.")]


def gdpr_router(spec: GdprSpec) -> APIRouter:
    router = APIRouter(prefix="/customers/{customer_id}", tags=["gdpr"])

    @router.get(
        "/export",
        summary=f"Export what {spec.service} holds about a customer",
        response_model=GdprDocument,
        responses=problem_responses(401, 403, 422),
        description=(
            f"Every record {spec.service} holds about the customer, decrypted (GDPR right of "
            "access). Needs `customers:read` and `pii:read`; each export is written to the audit "
            "log (`export`). A customer the service does not know is `status: holds_nothing`, "
            "not a 404. " + spec.export_description
        ),
    )
    async def export(
        customer_id: CustomerId,
        ctx: Annotated[RequestContext, context("customers:read", "pii:read")],
    ) -> GdprDocument:
        holding = await spec.export(ctx, customer_id)
        await ctx.audit_change("export", "customer", customer_id, customer_id, sorted(holding.data))
        return GdprDocument(
            service=spec.service,
            customer_id=customer_id,
            status="holds_nothing" if holding.empty else "ok",
            exported_at=ctx.now(),
            erased_at=holding.erased_at,
            data=holding.data,
            definitions=spec.definitions,
        )

    if spec.erasure_route:

        @router.get(
            "/erasure",
            summary=f"Has {spec.service} erased the customer?",
            response_model=ErasureReport,
            responses=problem_responses(401, 403, 422),
            description=(
                f"Whether {spec.service} processed `customer.erased` for this customer, and "
                "what it keeps (anonymous facts for the aggregates). Needs `customers:read`. "
                "Profiles' erasure report asks every service this."
            ),
        )
        async def erasure(
            customer_id: CustomerId,
            ctx: Annotated[RequestContext, context("customers:read")],
        ) -> ErasureReport:
            return await erasure_report(spec, ctx, customer_id)

    return router


async def erasure_report(
    spec: GdprSpec, ctx: RequestContext, customer_id: uuid.UUID
) -> ErasureReport:
    holds, erased_at = await spec.erasure(ctx, customer_id)
    status: ErasureState = (
        "erased" if erased_at is not None else ("pending" if holds else "holds_nothing")
    )
    return ErasureReport(
        service=spec.service,
        customer_id=customer_id,
        status=status,
        erased=status != "pending",
        erased_at=erased_at,
        kept=spec.kept_after_erasure if status == "erased" else [],
    )
