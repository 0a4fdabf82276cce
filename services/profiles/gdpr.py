"""GDPR in profiles: its own part (through the shared `GdprSpec`) and the all-services answer.

`GET /customers/{id}/export` is profiles' own document, as every service serves it.
`GET /customers/{id}/gdpr-export` and `GET /customers/{id}/erasure` assemble profiles' part and
every configured peer's (`PROFILES_GDPR_PEERS`): complete only when each service answered.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from services.profiles import peers, service
from services.profiles import repository as repo
from services.profiles.config import Settings
from services.profiles.schemas import (
    ConsentRead,
    ContactRead,
    ErasureStatus,
    ExportRead,
    GdprExport,
    HistoryRead,
    NeedRead,
    ServiceErasure,
    ServiceSection,
)
from shared.context import RequestContext
from shared.gdpr import GdprDocument, GdprSpec, Holding, erasure_report


async def holding(ctx: RequestContext, customer_id: uuid.UUID) -> Holding:
    """The profile, records merged into it, contacts, needs, consent and change history."""
    await service.guard(ctx, customer_id)
    session = ctx.session
    customer = await repo.get_customer(session, customer_id)
    if customer is None:
        return Holding(data={})
    merged = await repo.merged_into(session, customer.id)
    ids = [customer.id, *(m.id for m in merged)]
    insights = await repo.get_insights(session, ids)
    export = ExportRead(
        customer=service.to_read(customer, insights.get(customer.id)),
        merged_records=[service.to_read(m, insights.get(m.id)) for m in merged],
        contacts=[
            ContactRead.model_validate(c, from_attributes=True)
            for c in await repo.contacts_of(session, ids)
        ],
        needs=[
            NeedRead.model_validate(n, from_attributes=True)
            for n in await repo.needs_of(session, ids)
        ],
        consent=[
            ConsentRead.model_validate(r, from_attributes=True)
            for r in await repo.consent_history(session, ids)
        ],
        history=[
            HistoryRead.model_validate(e, from_attributes=True)
            for e in await repo.history(session, ids)
        ],
    )
    return Holding(data=export.model_dump(mode="json"), erased_at=customer.erased_at)


async def erasure(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[bool, datetime | None]:
    customer = await repo.get_customer(ctx.session, customer_id)
    return customer is not None, None if customer is None else customer.erased_at


GDPR = GdprSpec(
    service="profiles",
    export=holding,
    erasure=erasure,
    kept_after_erasure=[
        "customer number, kind, status, industry, region, company size, source channel, owner, "
        "tags, language, important dates (month and day)",
        "consent records",
        "needs' category, priority, status and due date",
        "the change history, with every personal value replaced by `[erased]`",
    ],
    export_description="The profile, records merged into it, contacts, needs, consent history "
    "and change history. For every service at once use `GET /customers/{id}/gdpr-export`.",
    erasure_route=False,  # GET /customers/{id}/erasure is the all-services report
)


async def gdpr_export(ctx: RequestContext, customer_id: uuid.UUID) -> GdprExport:
    """Profiles' own document and every peer's, each in a section with its status."""
    own = await holding(ctx, customer_id)
    settings: Settings = ctx.settings  # type: ignore[assignment]
    answers = await peers.ask_all(settings, f"/customers/{customer_id}/export")
    await ctx.audit_change("export", "customer", customer_id, customer_id, sorted(own.data))
    document = GdprDocument(
        service="profiles",
        customer_id=customer_id,
        status="holds_nothing" if own.empty else "ok",
        exported_at=ctx.now(),
        erased_at=own.erased_at,
        data=own.data,
    )
    sections = [
        ServiceSection(service="profiles", status=document.status, data=document),
        *(peers.export_section(a) for a in answers),
    ]
    return GdprExport(
        customer_id=customer_id,
        complete=all(s.status in ("ok", "holds_nothing") for s in sections),
        services=sections,
    )


async def erasure_status(ctx: RequestContext, customer_id: uuid.UUID) -> ErasureStatus:
    """Profiles' erasure state and every peer's `ErasureReport`."""
    await service.guard(ctx, customer_id)
    await service.load(ctx.session, customer_id)
    own = await erasure_report(GDPR, ctx, customer_id)
    settings: Settings = ctx.settings  # type: ignore[assignment]
    answers = await peers.ask_all(settings, f"/customers/{customer_id}/erasure")
    services = [
        ServiceErasure(
            service="profiles",
            status=own.status,
            erased=own.erased,
            erased_at=own.erased_at,
            kept=own.kept,
        ),
        *(peers.erasure_section(a) for a in answers),
    ]
    return ErasureStatus(
        customer_id=customer_id,
        complete=all(s.status in ("erased", "holds_nothing") for s in services),
        services=services,
    )
