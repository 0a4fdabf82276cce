"""Routes of the analytics service: parse, call the service layer, return the read models."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from services.analytics import schemas as s
from services.analytics import service
from services.analytics.errors import NoRebuild, RebuildRunning
from services.analytics.rebuild import start_job
from shared.context import RequestContext, context
from shared.contracts.common import Tier, UtcInstant
from shared.pagination import DEFAULT_LIMIT, MAX_LIMIT
from shared.problems import problem_responses

router = APIRouter()
admin_router = APIRouter(prefix="/admin", tags=["admin"])

TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
Reader = Annotated[RequestContext, context("analytics:read")]
Admin = Annotated[RequestContext, context("admin:write")]
AdminReader = Annotated[RequestContext, context("admin:read")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
]
From = Annotated[
    UtcInstant | None,
    Query(
        alias="from",
        description="Start of the period (inclusive, ISO 8601). Default: `to` minus the window.",
        examples=["2026-01-01T00:00:00Z"],
    ),
]
To = Annotated[
    UtcInstant | None,
    Query(alias="to", description="End of the period (exclusive, ISO 8601). Default: now."),
]


@router.get(
    "/customers/{customer_id}/insights",
    tags=["insights"],
    summary="One customer's tier, RFM, lifecycle, churn risk, loyalty level and facts",
    response_model=s.CustomerInsights,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_insights(
    ctx: Reader,
    customer_id: Annotated[uuid.UUID, Path(description="The customer (profiles' id).")],
) -> s.CustomerInsights:
    """Everything analytics derived for one customer. Scope `analytics:read`.

    - **tier**: ABC by profit contribution (see the API description for the exact rule);
      null until the first re-rank after the customer appeared.
    - **revenue / contribution**: over the trailing window (`window_days`), purchases minus
      refunds; cancelled purchases excluded.
    - **rfm**: recency (days since the last purchase), frequency (purchases in the window) and
      monetary (revenue in the window), each scored 1-5 by rank among customers with a
      purchase (ties share the lowest score), plus a segment (see `GET /rfm/segments`).
    - **lifecycle_stage**: `prospect` (no purchase), `first_purchase` (1), `repeat` (2+),
      `loyal` (4+ in the window and no dissatisfaction in the last 90 days: no survey score
      <= 2, no NPS <= 6, no complaint received, no complaint rating <= 2), `at_risk` (no
      purchase for more than 1.5x, `churned` more than 3x the customer's own average interval
      between purchases; 90 days for customers with a single purchase).
    - **churn_risk**: 0-100, the sum of: inactivity (15 above 1x, 30 above 1.5x, 50 above 3x
      the usual interval), recent dissatisfaction 20, open complaints 10 each (max 20), an
      SLA breach in 90 days 10, spend in the last half-window under half the previous half 15,
      no contact in 90 days 5; capped at 100. Each contributing factor is listed in `reasons`.
    - **loyalty_level**: the customer's membership level in the loyalty service (its code, as
      in loyalty's `GET /levels`) and when it changed, from `loyalty.level_changed`; null
      until loyalty first sets one.

    A merged-away customer id answers with its survivor's insights.
    """
    return await service.insights(ctx, customer_id)


@router.get(
    "/tiers",
    tags=["tiers"],
    summary="ABC distribution, thresholds, contribution shares and ranked members",
    response_model=s.TierReport,
    responses=problem_responses(400, 401, 403, 422),
)
async def get_tiers(
    ctx: Reader,
    tier: Annotated[Tier | None, Query(description="Only members of this tier.")] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> s.TierReport:
    """The ABC tiers as of the last re-rank. Scope `analytics:read`.

    Customers are ranked by profit contribution (trailing window) descending, then customer id
    ascending. With `before_i` the summed positive contribution of the customers ranked before
    customer i and `total` the summed positive contribution of all, customer i is **A** if
    `before_i / total < a_share` (0.80), else **B** if `< b_share` (0.95), else **C**;
    contribution <= 0 is always C. So the top customer is A and A carries at least `a_share`
    of the positive contribution. `share_of_contribution_pct` is each tier's positive
    contribution as a share of `total_positive_contribution`. `members` pages through the
    ranking (optionally one tier) with `rank` = position in the full ranking.
    """
    return await service.tiers(ctx, tier, cursor, limit)


@router.get(
    "/satisfaction",
    tags=["satisfaction"],
    summary="CSAT per dimension, NPS, effort and complaint ratings, grouped, against targets",
    response_model=s.SatisfactionReport,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 422),
)
async def get_satisfaction(
    ctx: Reader,
    group_by: Annotated[
        s.GroupBy,
        Query(
            description="`day`/`week`/`month` (period start, UTC), `tier`, `industry`, "
            "`region`, `owner` (the customer's current values), `channel` (the survey's or "
            "complaint's), or `none` for one overall group."
        ),
    ] = "none",
    since: From = None,
    until: To = None,
    tier: Annotated[Tier | None, Query(description="Only customers of this tier.")] = None,
    industry: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    region: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    channel: Annotated[str | None, Query(max_length=50, pattern=TEXT)] = None,
    owner_id: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
) -> s.SatisfactionReport:
    """Satisfaction figures of surveys answered (and complaints rated) in `[from, to)`.
    Scope `analytics:read`.

    - **CSAT** per dimension (product_quality, service, price, delivery, after_sales, overall):
      `satisfied_pct` = share of answers >= 4 on the 1-5 scale, with `count` and `mean`.
    - **NPS** = % promoters (9-10) minus % detractors (0-6), from -100 to 100.
    - **Effort**: mean customer effort score (1-7, lower is better).
    - **Complaint resolution**: the customers' ratings of resolved complaints (1-5), share >= 4.

    Each figure carries its target (settings `ANALYTICS_TARGET_*`) and the `gap`: actual
    minus target (target minus actual for effort), negative when short of the target.
    Figures with nothing to count are null; groups without data are left out (except the
    single group of `group_by=none`).
    """
    since, until = service.period(ctx, since, until)
    filters = {
        "tier": tier,
        "industry": industry,
        "region": region,
        "channel": channel,
        "owner_id": owner_id,
    }
    return await service.satisfaction(ctx, group_by, since, until, filters)


@router.get(
    "/complaints/stats",
    tags=["complaints"],
    summary="Complaint volume, SLA compliance, response and resolution times, reopen rate",
    response_model=s.ComplaintStats,
    response_model_by_alias=True,
    responses=problem_responses(401, 403, 422),
)
async def get_complaint_stats(
    ctx: Reader,
    group_by: Annotated[
        s.ComplaintGroupBy,
        Query(
            description="Period of receipt (UTC), a complaint attribute, the customer's "
            "current `tier`, the complaint's `assignee` or `team` (latest assignment), or "
            "`none`."
        ),
    ] = "none",
    since: From = None,
    until: To = None,
) -> s.ComplaintStats:
    """Complaints received in `[from, to)`. Scope `analytics:read`.

    Per group: counts received, open and resolved; `by_category`, `by_root_cause`,
    `by_severity`; time to first response and to resolution in SLA seconds (paused time
    excluded) as p50 and p90 (continuous percentiles); per target `sla_met_pct` = targets met
    and never breached as % of targets decided (met, missed or breached);
    `sla_compliance_pct` the same over both targets; `reopen_rate_pct` = complaints reopened
    at least once as % of complaints ever resolved.
    """
    since, until = service.period(ctx, since, until)
    return await service.complaint_stats(ctx, group_by, since, until)


@router.get(
    "/churn-risk",
    tags=["churn"],
    summary="Customers ranked by churn risk, with the reasons",
    response_model=s.ChurnRiskPage,
    responses=problem_responses(400, 401, 403, 422),
)
async def get_churn_risk(
    ctx: Reader,
    min_score: Annotated[int, Query(ge=0, le=100, description="Lowest score to list.")] = 1,
    level: Annotated[s.ChurnLevel | None, Query(description="Only this level.")] = None,
    tier: Annotated[Tier | None, Query(description="Only this ABC tier.")] = None,
    owner_id: Annotated[str | None, Query(max_length=200, pattern=TEXT)] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> s.ChurnRiskPage:
    """Customers by churn-risk score descending (then id). Scope `analytics:read`.

    The score (0-100) and its `reasons` are defined under `GET /customers/{id}/insights`;
    levels: low < 40 <= medium < 70 <= high (settings).
    """
    return await service.churn_risk(ctx, min_score, level, tier, owner_id, cursor, limit)


@router.get(
    "/rfm/segments",
    tags=["tiers"],
    summary="RFM segments: size, share and average recency, frequency and monetary",
    response_model=s.RfmSegments,
    responses=problem_responses(401, 403),
)
async def get_rfm_segments(ctx: Reader) -> s.RfmSegments:
    """Every RFM segment, also empty ones. Scope `analytics:read`.

    R, F and M are scored 1-5 by rank among the n customers with a purchase: ordered worst
    first (for recency: the most days since the last purchase), a customer at position p
    scores floor(5 x (p - 1) / n) + 1, and tied values all take the position of the first of
    them, so ties share the lowest score (8 one-time buyers of 10 customers all have F = 1)
    and 5 is best. The first matching rule
    names the segment: champions (R>=4, F>=4, M>=4), loyal_customers (R>=3, F>=4),
    potential_loyalists (R>=4, F>=2), new_customers (R>=4), need_attention (R=3),
    cant_lose_them (R<=2, F>=4), at_risk (R=2), lost (R=1).
    """
    return await service.rfm_segments(ctx)


def _rerank_read(result: Any) -> s.RerankRead:
    return s.RerankRead(
        as_of=result.as_of,
        tier_events=result.tier_events,
        lifecycle_events=result.lifecycle_events,
        churn_events=result.churn_events,
        duration_ms=result.duration_ms,
    )


@admin_router.post(
    "/recompute",
    summary="Re-rank every customer now",
    response_model=s.RerankRead,
    responses=problem_responses(401, 403, 409),
)
async def post_recompute(ctx: Admin) -> s.RerankRead:
    """Run the global re-rank (facts, lifecycle, churn risk, ABC, RFM) at once instead of
    waiting for the debounce. Publishes the changes it finds. Scope `admin:write`."""
    return _rerank_read(await service.recompute(ctx))


def _job_read(job: Any) -> s.RebuildJob:
    result = None
    if job.result is not None:
        result = s.RebuildResultRead(
            events=job.result.events,
            customers=job.result.customers,
            duration_ms=job.result.duration_ms,
            rerank=_rerank_read(job.result.rerank),
        )
    return s.RebuildJob(
        status=job.status,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result=result,
        error=job.error,
    )


@admin_router.post(
    "/rebuild",
    status_code=202,
    summary="Start rebuilding every projection from the other services' event feeds",
    response_model=s.RebuildJob,
    responses=problem_responses(401, 403, 409),
)
async def post_rebuild(ctx: Admin) -> s.RebuildJob:
    """Start a rebuild in the background and answer `202` at once; follow it with
    `GET /admin/rebuild`. Scope `admin:write`.

    The rebuild empties the projections and replays the `GET /events` feeds of profiles,
    interactions, complaints and loyalty (settings `PROFILES_URL`, `INTERACTIONS_URL`,
    `COMPLAINTS_URL`, `LOYALTY_URL`) in one transaction, then re-ranks. Readers see the old
    figures until it commits; consumer batches wait for it; only values that differ from before
    are published. A feed that cannot be read fails the job with nothing changed. One rebuild
    at a time per replica (`409` while one runs). The same runs as
    `python -m services.analytics.rebuild`.
    """
    state = ctx.app_state
    current = getattr(state, "rebuild_job", None)
    if current is not None and current.status == "running":
        raise RebuildRunning(
            "A rebuild is already running", started_at=current.started_at.isoformat()
        )
    job, task = start_job(service.settings_of(ctx), getattr(state, "feed_clients", None))
    state.rebuild_job, state.rebuild_task = job, task
    await ctx.audit_change("create", "rebuild")
    return _job_read(job)


@admin_router.get(
    "/rebuild",
    summary="The state of the latest rebuild",
    response_model=s.RebuildJob,
    responses=problem_responses(401, 403, 404),
)
async def get_rebuild(ctx: AdminReader) -> s.RebuildJob:
    """`running`, `succeeded` (with what was read and re-ranked) or `failed` (with the error)
    for the latest rebuild started on this replica. Scope `admin:read`."""
    job = getattr(ctx.app_state, "rebuild_job", None)
    if job is None:
        raise NoRebuild("No rebuild has run on this replica since it started")
    return _job_read(job)
