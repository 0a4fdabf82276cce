"""Exchange rates into the reporting currency, maintained by admins."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from services.interactions import repository as repo
from services.interactions import schemas, service
from services.interactions.api.common import PurchasesReader
from shared.context import RequestContext, context
from shared.problems import problem_responses

router = APIRouter(prefix="/fx-rates", tags=["purchases"])
Admin = Annotated[RequestContext, context("admin:write")]


@router.put(
    "",
    summary="Set exchange rates into the reporting currency",
    response_model=list[schemas.FxRateRead],
    responses=problem_responses(401, 403, 422),
)
async def put_fx_rates(ctx: Admin, body: schemas.FxRatesPut) -> list[schemas.FxRateRead]:
    """Set the rate of each currency for each day (needs `admin:write`); a rate set again for
    the same currency and day replaces it. Idempotent: sending the same rates twice changes
    nothing more.

    A rate is how many units of the reporting currency (`KEHU_REPORTING_CURRENCY`, default
    CNY) one unit of `currency` is worth on that day (UTC). A purchase or refund in another
    currency is converted when it is recorded at the rate of its own date, and refused with a
    422 naming the currency and the date while no rate exists; the stored and published
    original amounts stay, the converted ones are added. Rates do not change purchases already
    recorded. A rate for the reporting currency itself is ignored (always 1).
    """
    return [schemas.FxRateRead.of(r) for r in await service.put_fx_rates(ctx, body)]


@router.get(
    "",
    summary="List exchange rates",
    response_model=list[schemas.FxRateRead],
    responses=problem_responses(401, 403, 422),
)
async def list_fx_rates(
    ctx: PurchasesReader,
    currency: Annotated[
        str | None, Query(pattern=r"^[A-Z]{3}$", description="Only this currency.")
    ] = None,
    since: Annotated[
        dt.date | None, Query(alias="from", description="From this day (inclusive).")
    ] = None,
    until: Annotated[dt.date | None, Query(alias="to", description="Before this day.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 200,
) -> list[schemas.FxRateRead]:
    """Rates into the reporting currency by currency, newest day first (needs
    `purchases:read`)."""
    reporting = ctx.settings.reporting_currency
    rows = await repo.list_rates(ctx.session, reporting, currency, since, until, limit)
    return [schemas.FxRateRead.of(r) for r in rows]
