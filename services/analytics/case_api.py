"""`GET /cases/stats`: the service desk's case statistics by type (see `cases.py`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.analytics import cases, service
from services.analytics.api import From, Reader, To
from shared.problems import problem_responses

router = APIRouter()


@router.get(
    "/cases/stats",
    tags=["cases"],
    summary="Service-desk cases by type: volumes, SLA compliance, p50/p90, satisfaction",
    response_model=cases.CaseStats,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 422),
)
async def get_case_stats(
    ctx: Reader,
    group_by: Annotated[
        cases.CaseGroupBy,
        Query(
            description="Case type (default), type and subtype, channel, severity, month "
            "of receipt (UTC), or `none`."
        ),
    ] = "type",
    since: From = None,
    until: To = None,
) -> cases.CaseStats:
    """Cases of every type (inquiries, service requests, technical support, suggestions,
    complaints, claims) received in `[from, to)`. Scope `analytics:read`.

    Per group: counts received, open (no outcome yet) and resolved (an outcome: resolved,
    accepted or declined); time to first response and to the outcome in SLA seconds (paused
    time excluded) as p50 and p90 (continuous percentiles); per target `sla_met_pct` = targets
    met and never breached as % of targets decided; `sla_compliance_pct` the same over both;
    the customers' satisfaction rating after any case type: `rated`, `rating_avg` (1-5) and
    `satisfied_pct` (ratings of 4 or 5).
    """
    since, until = service.period(ctx, since, until)
    return await cases.stats(ctx.session, group_by, since, until)
