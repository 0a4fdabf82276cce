"""Routes for the figures a manager steers staff by: staff performance, the management report."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse, Response

from services.analytics import reports, service
from services.analytics import schemas as s
from services.analytics.api import From, Reader, To
from services.analytics.staff import DEFINITIONS, StaffGroupBy
from shared.contracts.common import UtcInstant
from shared.problems import problem_responses

router = APIRouter(tags=["staff"])


STAFF_DESCRIPTION = (
    "How each owner, assignee or team served customers in `[from, to)` (default: the trailing "
    "window ending now). Scope `analytics:read`. Records without an owner, assignee or team "
    "form the group with `key` null. The figures (also returned as `definitions`):\n\n"
    + "\n".join(f"- **{name}**: {text}" for name, text in DEFINITIONS.items())
)


@router.get(
    "/staff/performance",
    summary="Follow-ups, revisits, interactions, complaints and satisfaction per owner, "
    "assignee or team",
    description=STAFF_DESCRIPTION,
    response_model=s.StaffPerformance,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 422),
)
async def get_staff_performance(
    ctx: Reader,
    group_by: Annotated[
        StaffGroupBy,
        Query(
            description="`owner` (the customer's account manager), `assignee` (the agent "
            "assigned the follow-up or complaint, or who logged the interaction) or `team` "
            "(the complaint's team; for follow-ups and interactions the agent's team from "
            "their latest complaint assignment)."
        ),
    ] = "assignee",
    since: From = None,
    until: To = None,
) -> s.StaffPerformance:
    since, until = service.period(ctx, since, until)
    return await reports.staff_performance(ctx, group_by, since, until)


@router.get(
    "/reports/management",
    summary="The management report of a week or month: tiers, satisfaction, complaints, "
    "churn risk, staff",
    response_model=s.ManagementReport,
    response_model_by_alias=True,
    responses={
        200: {
            "description": "The report as JSON, or as a readable HTML page with "
            "`Accept: text/html`.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 422),
    },
)
async def get_management_report(
    ctx: Reader,
    period: Annotated[
        Literal["week", "month"], Query(description="A calendar week (Monday) or month, UTC.")
    ] = "week",
    at: Annotated[
        UtcInstant | None,
        Query(
            description="Any instant in the period to report (default now).",
            examples=["2026-11-20T00:00:00Z"],
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> s.ManagementReport | Response:
    """One document a manager reads (scope `analytics:read`): tier movements (up and down
    counts, the biggest movers), satisfaction against target per dimension with the trend
    against the previous period, complaints and SLA compliance, churn-risk changes (customers
    newly at high risk and their owners) and the staff figures of `GET /staff/performance`
    by assignee. Every figure's definition is in `definitions`. Send `Accept: text/html` for
    a page to read in a browser."""
    report = await reports.management_report(ctx, period, at or ctx.now())
    if accept and "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(reports.render_html(report))
    return report
