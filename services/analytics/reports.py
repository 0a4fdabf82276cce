"""Staff performance and the management report: the figures a manager steers staff by.

Tier and churn-risk movements come from the changes analytics published (its event log, kept
`outbox_retention_days`); satisfaction and complaints from the same queries as their own
endpoints, so the report and `GET /satisfaction` / `GET /complaints/stats` always agree.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import schemas as s
from services.analytics import service
from services.analytics import staff as q
from services.analytics.errors import InvalidPeriod
from shared.context import RequestContext
from shared.contracts.analytics import CustomerChurnRiskChanged, CustomerTierChanged
from shared.contracts.common import in_utc

# The management report lists this many of the customers newly at high churn risk (highest
# scores first); it counts and groups all of them.
NEW_HIGH_RISK_LISTED = 50
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

REPORT_DEFINITIONS = {
    "period": "`week`: Monday 00:00 UTC to the next Monday; `month`: the 1st 00:00 UTC to the "
    "next 1st; the period containing `at` (default now). Trends compare with the period before.",
    "tier_movements": "Tier changes analytics published in the period: `up` to a better tier, "
    "`down` to a worse one, `new` first tiers; biggest movers by tiers moved from the tier "
    "before the period (or the first tier given in it) to the tier at its end, then contribution.",
    "satisfaction": "CSAT per dimension as in GET /satisfaction (share of answers >= 4), "
    "with the target, the gap and the change against the previous period.",
    "complaints": "Complaints received in the period, as in GET /complaints/stats.",
    "churn": "Churn-risk changes published in the period: customers whose level became high "
    "(from lower or none), with their owners; and those whose level left high.",
    "staff": "The staff figures as in GET /staff/performance, with `to` the period's end, or "
    "now while the period runs (a follow-up due later this month is not overdue yet).",
    **{f"staff.{k}": v for k, v in q.DEFINITIONS.items()},
}


def _cadence(ctx: RequestContext) -> q.Cadence:
    settings = service.settings_of(ctx)
    return q.Cadence(settings.cadence_a_days, settings.cadence_b_days, settings.cadence_c_days)


async def staff_performance(
    ctx: RequestContext, group_by: q.StaffGroupBy, since: datetime, until: datetime
) -> s.StaffPerformance:
    return s.StaffPerformance(
        from_=since,
        to=until,
        group_by=group_by,
        definitions=q.DEFINITIONS,
        groups=await _staff_groups(ctx, group_by, since, until),
    )


async def _staff_groups(
    ctx: RequestContext, group_by: q.StaffGroupBy, since: datetime, until: datetime
) -> list[s.StaffGroup]:
    data = await q.figures(ctx.session, group_by, since, until, _cadence(ctx))
    pct = service.pct
    groups = []
    for key, g in sorted(data.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        c, csat, revisit = g.get("complaints"), g.get("csat"), g.get("revisit")
        completed = g.get("followups_completed", 0)
        groups.append(
            s.StaffGroup(
                key=key,
                followups_completed=completed,
                followups_completed_on_time_pct=pct(g.get("followups_on_time", 0), completed),
                followups_overdue_now=g.get("followups_overdue_now", 0),
                revisit_compliance_pct=pct(revisit.within, revisit.n) if revisit else None,
                revisit_customers=revisit.n if revisit else 0,
                interactions_logged=g.get("interactions_logged", 0),
                complaints_handled=c.handled if c else 0,
                first_response=s.Percentiles(
                    count=c.fr_n if c else 0,
                    p50_seconds=_round(c.fr_p50) if c else None,
                    p90_seconds=_round(c.fr_p90) if c else None,
                ),
                resolution=s.Percentiles(
                    count=c.res_n if c else 0,
                    p50_seconds=_round(c.res_p50) if c else None,
                    p90_seconds=_round(c.res_p90) if c else None,
                ),
                sla_compliance_pct=pct(c.met, c.decided) if c else None,
                resolution_rating=s.RatingSummary(
                    count=c.rated if c else 0,
                    mean=_round(c.rating_mean) if c else None,
                    satisfied_pct=pct(c.rated_satisfied, c.rated) if c else None,
                ),
                customer_csat=s.CsatSummary(
                    count=csat.n if csat else 0,
                    satisfied_pct=pct(csat.satisfied, csat.n) if csat else None,
                ),
            )
        )
    return groups


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def report_period(period: str, at: datetime) -> tuple[datetime, datetime, datetime]:
    """(previous start, start, end) of the week or month containing `at` (UTC)."""
    if period not in ("week", "month"):
        raise InvalidPeriod(f"Unknown period {period!r}: use week or month")
    try:
        return _period_bounds(period, in_utc(at))
    except (OverflowError, ValueError):  # the first or last period of the calendar
        raise InvalidPeriod(
            f"The {period} containing `at` and the one before it must lie within years 1-9999",
            at=at.isoformat(),
        ) from None


def _period_bounds(period: str, at: datetime) -> tuple[datetime, datetime, datetime]:
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start - timedelta(days=7), start, start + timedelta(days=7)
    start = day.replace(day=1)
    end = start + timedelta(days=calendar.monthrange(start.year, start.month)[1])
    before = start - timedelta(days=1)
    return before.replace(day=1), start, end


async def _tier_movements(
    session: AsyncSession, since: datetime, until: datetime
) -> s.TierMovements:
    """Counted and ranked in SQL: a first re-rank publishes a tier for every customer, so the
    period can hold as many changes as there are customers."""
    params = {"type": CustomerTierChanged.event_type(), "since": since, "until": until}
    changes = """
        SELECT o.id, o.subject::uuid AS customer_id, o.data->>'tier' AS tier,
               o.data->>'previous_tier' AS previous_tier
        FROM outbox o
        WHERE o.type = :type AND o.time >= :since AND o.time < :until
    """
    # One pass over the period's changes (JSON read once): the counts, and per customer with a
    # change from a tier (most changes of a period are first tiers, which move nobody) the tier
    # before its first change to the tier of its last. Tiers are A, B, C: a smaller letter is a
    # better tier, the distance is the steps.
    rows = (
        await session.execute(
            sa.text(
                f"""
                WITH changes AS MATERIALIZED ({changes}),
                counts AS (
                    SELECT count(*) FILTER (WHERE previous_tier IS NULL) AS new,
                           count(*) FILTER (WHERE ascii(tier) < ascii(previous_tier)) AS up,
                           count(*) FILTER (WHERE ascii(tier) > ascii(previous_tier)) AS down
                    FROM changes
                ),
                moves AS (
                    SELECT customer_id,
                           (array_agg(coalesce(previous_tier, tier) ORDER BY id))[1] AS start,
                           (array_agg(tier ORDER BY id DESC))[1] AS tier
                    FROM changes
                    WHERE customer_id IN (
                        SELECT customer_id FROM changes WHERE previous_tier IS NOT NULL
                    )
                    GROUP BY customer_id
                ),
                movers AS (
                    SELECT m.customer_id, m.start, m.tier,
                           abs(ascii(m.tier) - ascii(m.start)) AS steps,
                           coalesce(cf.contribution, 0) AS contribution, cf.owner_id
                    FROM moves m LEFT JOIN customer_facts cf ON cf.customer_id = m.customer_id
                    WHERE m.tier <> m.start
                    ORDER BY steps DESC, contribution DESC, m.customer_id::text
                    LIMIT 10
                )
                SELECT counts.new, counts.up, counts.down, movers.*
                FROM counts LEFT JOIN movers ON true
                ORDER BY movers.steps DESC NULLS LAST, movers.contribution DESC,
                         movers.customer_id::text
                """
            ),
            params,
        )
    ).all()
    counts = rows[0]
    movers = [m for m in rows if m.customer_id is not None]
    return s.TierMovements(
        up=counts.up,
        down=counts.down,
        new=counts.new,
        biggest_movers=[
            s.TierMover(
                customer_id=m.customer_id,
                previous_tier=m.start,
                tier=m.tier,
                steps=m.steps,
                contribution=m.contribution,
                owner_id=m.owner_id,
            )
            for m in movers
        ],
    )


async def _churn(
    session: AsyncSession, since: datetime, until: datetime, high_from: int
) -> s.ChurnChanges:
    """A customer is newly at high risk when their last move across the line in the period
    went up into high; every move down out of high counts as one that left. Counted and
    grouped by owner in SQL, listed only for the highest scores: after a first re-rank a fifth
    of all customers can be newly high (4 MB of JSON at 100,000 customers)."""
    row = (
        await session.execute(
            sa.text(
                """
                WITH moves AS MATERIALIZED (
                    SELECT o.id, o.subject::uuid AS customer_id,
                           (o.data->>'score')::int AS score,
                           CASE WHEN o.data->>'level' = 'high'
                                     AND NOT coalesce((o.data->>'previous_score')::int >= :high,
                                                      false)
                                THEN 'became'
                                WHEN o.data->>'level' <> 'high'
                                     AND coalesce((o.data->>'previous_score')::int >= :high,
                                                  false)
                                THEN 'left'
                           END AS move
                    FROM outbox o
                    WHERE o.type = :type AND o.time >= :since AND o.time < :until
                ),
                last AS (
                    SELECT DISTINCT ON (customer_id) id, customer_id, score, move
                    FROM moves WHERE move IS NOT NULL
                    ORDER BY customer_id, id DESC
                ),
                became AS MATERIALIZED (
                    SELECT l.id, l.customer_id, l.score, cf.owner_id
                    FROM last l LEFT JOIN customer_facts cf ON cf.customer_id = l.customer_id
                    WHERE l.move = 'became'
                ),
                -- The reasons are read only for the customers listed.
                listed AS (
                    SELECT b.customer_id, b.score, b.owner_id, o.data->'reasons' AS reasons
                    FROM (SELECT * FROM became ORDER BY score DESC, customer_id
                          LIMIT :listed) b
                    JOIN outbox o ON o.id = b.id
                )
                SELECT
                    (SELECT count(*) FROM moves WHERE move = 'left') AS left_high_risk,
                    (SELECT count(*) FROM became) AS became,
                    (SELECT coalesce(jsonb_object_agg(owner, n), '{}')
                     FROM (SELECT coalesce(owner_id, '(none)') AS owner, count(*) AS n
                           FROM became GROUP BY 1) o) AS by_owner,
                    (SELECT coalesce(jsonb_agg(l ORDER BY l.score DESC, l.customer_id), '[]')
                     FROM listed l) AS listed
                """
            ),
            {
                "type": CustomerChurnRiskChanged.event_type(),
                "since": since,
                "until": until,
                "high": high_from,
                "listed": NEW_HIGH_RISK_LISTED,
            },
        )
    ).one()
    return s.ChurnChanges(
        new_high_risk_count=row.became,
        new_high_risk=[
            s.NewHighRisk(
                customer_id=n["customer_id"],
                score=n["score"],
                owner_id=n["owner_id"],
                reasons=n["reasons"] or [],
            )
            for n in row.listed
        ],
        by_owner=row.by_owner,
        left_high_risk=row.left_high_risk,
    )


async def management_report(ctx: RequestContext, period: str, at: datetime) -> s.ManagementReport:
    settings = service.settings_of(ctx)
    previous, since, until = report_period(period, at)
    no_filter: dict[str, str | None] = dict.fromkeys(
        ("tier", "industry", "region", "channel", "owner_id")
    )
    now_sat = await service.satisfaction(ctx, "none", since, until, no_filter)
    before_sat = await service.satisfaction(ctx, "none", previous, since, no_filter)
    csat_before = before_sat.groups[0].csat
    dimensions = []
    for name, figure in now_sat.groups[0].csat.items():
        prior = csat_before.get(name)
        prior_pct = prior.satisfied_pct if prior else None
        dimensions.append(
            s.DimensionTrend(
                dimension=name,
                count=figure.count,
                satisfied_pct=figure.satisfied_pct,
                target_pct=figure.target_pct,
                gap_pct=figure.gap_pct,
                previous_satisfied_pct=prior_pct,
                trend_pct=(
                    round(figure.satisfied_pct - prior_pct, 2)
                    if figure.satisfied_pct is not None and prior_pct is not None
                    else None
                ),
            )
        )
    nps = now_sat.groups[0].nps
    stats_now = await service.complaint_stats(ctx, "none", since, until)
    stats_before = await service.complaint_stats(ctx, "none", previous, since)
    cur = stats_now.groups[0] if stats_now.groups else None
    old = stats_before.groups[0] if stats_before.groups else None
    complaints = s.ComplaintsSummary(
        received=cur.received if cur else 0,
        open=cur.open if cur else 0,
        resolved=cur.resolved if cur else 0,
        sla_compliance_pct=cur.sla_compliance_pct if cur else None,
        previous_received=old.received if old else 0,
        previous_sla_compliance_pct=old.sla_compliance_pct if old else None,
        first_response_p50_seconds=cur.first_response.p50_seconds if cur else None,
        resolution_p50_seconds=cur.resolution.p50_seconds if cur else None,
    )
    session = ctx.session
    return s.ManagementReport(
        period=period,
        from_=since,
        to=until,
        previous_from=previous,
        tier_movements=await _tier_movements(session, since, until),
        satisfaction=dimensions,
        nps=nps.score if nps else None,
        nps_target=settings.target_nps,
        complaints=complaints,
        churn=await _churn(session, since, until, settings.churn_high_from),
        # As of now while the period runs: "overdue now" and revisit compliance are measured
        # at `to`, and at the end of a month still under way every follow-up due later in it
        # would count as overdue already.
        staff=await _staff_groups(ctx, "assignee", since, min(until, ctx.now())),
        definitions=REPORT_DEFINITIONS,
    )


def render_html(report: s.ManagementReport) -> str:
    """The report as a page a manager reads (the same figures as the JSON)."""
    return TEMPLATES.get_template("management_report.html").render(r=report)
