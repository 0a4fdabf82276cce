"""Read-side rules: turn the projections into the documented figures."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.analytics import repository as repo
from services.analytics import schemas as s
from services.analytics.config import Settings
from services.analytics.errors import CustomerNotFound, InvalidPeriod, RebuildRunning
from services.analytics.recompute import RerankResult, lock_state, rerank, try_lock_rerank
from services.analytics.tiering import RFM_SEGMENTS
from shared.context import RequestContext
from shared.pagination import InvalidCursor, decode_cursor, encode_cursor


def settings_of(ctx: RequestContext) -> Settings:
    settings = ctx.settings
    assert isinstance(settings, Settings)
    return settings


def pct(part: int | float, whole: int | float) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def period(
    ctx: RequestContext, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    return window(settings_of(ctx), since, until, ctx.now())


def window(
    settings: Settings, since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    # `since` and `until` come in UTC: the API's `from` and `to` are `UtcInstant`s, which read
    # a time without an offset as UTC.
    until = until or now
    try:
        since = since or until - timedelta(days=settings.window_days)
    except OverflowError as exc:
        raise InvalidPeriod("`to` is too early for the default window; give `from`") from exc
    if since >= until:
        raise InvalidPeriod("`from` must be before `to`", since=since.isoformat())
    return since, until


async def insights(ctx: RequestContext, customer_id: uuid.UUID) -> s.CustomerInsights:
    session, settings, now = ctx.session, settings_of(ctx), ctx.now()
    survivor = await repo.resolve(session, customer_id)
    row = await repo.facts(session, survivor)
    if row is None:
        raise CustomerNotFound(f"No analytics facts for customer {customer_id}")
    since = now - timedelta(days=settings.window_days)
    answers, summary = await repo.customer_csat(session, survivor, since)
    rfm = None
    if row.rfm_r is not None:
        rfm = s.RfmRead(
            recency_days=row.rfm_recency_days,
            frequency=row.purchase_count,
            monetary=row.revenue,
            r=row.rfm_r,
            f=row.rfm_f,
            m=row.rfm_m,
            score=f"{row.rfm_r}{row.rfm_f}{row.rfm_m}",
            segment=row.rfm_segment,
        )
    churn = None
    if row.churn_score is not None:
        churn = s.ChurnRiskRead(
            score=row.churn_score, level=row.churn_level, reasons=row.churn_reasons or []
        )
    return s.CustomerInsights(
        customer_id=survivor,
        profile_known=row.profile_known,
        dimensions=s.Dimensions(
            kind=row.kind,
            customer_number=row.customer_number,
            industry=row.industry,
            region=row.region,
            company_size=row.company_size,
            source_channel=row.source_channel,
            owner_id=row.owner_id,
            status=row.status,
        ),
        tier=row.tier,
        tier_rank=await repo.tier_rank(session, row.contribution, survivor),
        revenue=row.revenue,
        contribution=row.contribution,
        window_days=settings.window_days,
        purchases=s.PurchaseFacts(
            count_in_window=row.purchase_count,
            total=row.purchases_total,
            first_at=row.first_purchase_at,
            last_at=row.last_purchase_at,
        ),
        rfm=rfm,
        lifecycle_stage=row.lifecycle_stage,
        churn_risk=churn,
        loyalty_level=(
            None
            if row.loyalty_level is None or row.loyalty_level_at is None
            else s.LoyaltyLevelRead(code=row.loyalty_level, changed_at=row.loyalty_level_at)
        ),
        interactions=s.InteractionFacts(
            total=row.interaction_count,
            last_contact_at=row.last_contact_at,
            by_channel=await repo.channel_counts(session, survivor),
        ),
        satisfaction=s.SatisfactionFacts(
            surveys=summary.surveys,
            csat={
                a.dimension: s.CsatFigure(
                    count=a.n, mean=_round(a.mean), satisfied_pct=pct(a.satisfied, a.n)
                )
                for a in answers
            },
            last_nps=summary.last_nps,
            last_survey_at=summary.last_at,
        ),
        complaints=s.ComplaintFacts(
            total=row.complaints_total,
            open=row.complaints_open,
            sla_breaches_recent=row.sla_breaches_recent,
        ),
        computed_at=row.facts_at,
    )


def _cursor(cursor: str | None, *names: str) -> dict[str, Any] | None:
    decoded = decode_cursor(cursor)
    if decoded is not None and not all(n in decoded for n in names):
        raise InvalidCursor("The cursor is not one this API issued")
    return decoded


async def tiers(
    ctx: RequestContext, tier: str | None, cursor: str | None, limit: int
) -> s.TierReport:
    session, settings = ctx.session, settings_of(ctx)
    decoded = _cursor(cursor, "c", "id", "rank", "tier")
    after = None
    rank = 0
    if decoded is not None:
        if decoded["tier"] != tier:
            raise InvalidCursor("The cursor belongs to another `tier` filter")
        try:
            after = (Decimal(decoded["c"]), uuid.UUID(decoded["id"]))
            rank = int(decoded["rank"])
        except (ValueError, ArithmeticError) as exc:
            raise InvalidCursor("The cursor is not one this API issued") from exc
    summary = await repo.tier_summary(session)
    total_positive = sum((r.positive for r in summary), Decimal(0))
    by_tier = {r.tier: r for r in summary}
    rows = await repo.tier_members(session, tier, after, limit + 1)
    members = []
    for row in rows[:limit]:
        rank = (
            rank + 1
            if tier is None
            else await repo.tier_rank(session, row.contribution, row.customer_id)
        )
        members.append(
            s.TierMember(
                rank=rank,
                customer_id=row.customer_id,
                tier=row.tier,
                contribution=row.contribution,
                revenue=row.revenue,
                customer_number=row.customer_number,
            )
        )
    next_cursor = None
    if len(rows) > limit and members:
        last = members[-1]
        next_cursor = encode_cursor(
            {
                "c": str(last.contribution),
                "id": str(last.customer_id),
                "rank": last.rank,
                "tier": tier,
            }
        )
    return s.TierReport(
        computed_at=await repo.last_rerank(session),
        window_days=settings.window_days,
        thresholds=s.Thresholds(a_share=settings.tier_a_share, b_share=settings.tier_b_share),
        customers=sum(r.customers for r in summary),
        total_positive_contribution=total_positive,
        tiers=[
            s.TierSummary(
                tier=t,
                customers=by_tier[t].customers if t in by_tier else 0,
                contribution=by_tier[t].contribution if t in by_tier else Decimal(0),
                share_of_contribution_pct=(
                    pct(float(by_tier[t].positive if t in by_tier else 0), float(total_positive))
                ),
            )
            for t in ("A", "B", "C")
        ],
        members=s.TierMemberPage(items=members, next_cursor=next_cursor),
    )


def _group(settings: Settings, key: str | None) -> dict[str, Any]:
    return {
        "key": key,
        "csat": {},
        "nps": s.NpsFigure(count=0, target=settings.target_nps),
        "effort": s.EffortFigure(count=0, target=settings.target_effort_mean),
        "complaint_resolution": s.RatingFigure(
            count=0, target_pct=settings.target_resolution_rating_pct
        ),
    }


async def satisfaction(
    ctx: RequestContext,
    group_by: str,
    since: datetime,
    until: datetime,
    filters: dict[str, str | None],
) -> s.SatisfactionReport:
    settings = settings_of(ctx)
    data = await repo.satisfaction(ctx.session, group_by, since, until, filters)
    groups: dict[str | None, dict[str, Any]] = {}
    if group_by == "none":
        groups[None] = _group(settings, None)
    for a in data["answers"]:
        g = groups.setdefault(a.key, _group(settings, a.key))
        satisfied = pct(a.satisfied, a.n)
        g["csat"][a.dimension] = s.CsatWithTarget(
            count=a.n,
            mean=_round(a.mean),
            satisfied_pct=satisfied,
            target_pct=settings.target_csat_pct,
            gap_pct=_round(None if satisfied is None else satisfied - settings.target_csat_pct),
        )
    for n in data["nps"]:
        g = groups.setdefault(n.key, _group(settings, n.key))
        if n.n:
            promoters, detractors = pct(n.promoters, n.n), pct(n.detractors, n.n)
            assert promoters is not None and detractors is not None
            score = round(promoters - detractors, 2)
            g["nps"] = s.NpsFigure(
                count=n.n,
                promoters_pct=promoters,
                passives_pct=pct(n.passives, n.n),
                detractors_pct=detractors,
                score=score,
                target=settings.target_nps,
                gap=round(score - settings.target_nps, 2),
            )
        if n.effort_n:
            g["effort"] = s.EffortFigure(
                count=n.effort_n,
                mean=_round(n.effort_mean),
                target=settings.target_effort_mean,
                gap=_round(settings.target_effort_mean - n.effort_mean),
            )
    for r in data["ratings"]:
        g = groups.setdefault(r.key, _group(settings, r.key))
        satisfied = pct(r.satisfied, r.n)
        g["complaint_resolution"] = s.RatingFigure(
            count=r.n,
            mean=_round(r.mean),
            satisfied_pct=satisfied,
            target_pct=settings.target_resolution_rating_pct,
            gap_pct=_round(
                None if satisfied is None else satisfied - settings.target_resolution_rating_pct
            ),
        )
    ordered = sorted(groups.values(), key=lambda g: (g["key"] is None, g["key"] or ""))
    return s.SatisfactionReport(
        from_=since,
        to=until,
        group_by=group_by,
        groups=[s.SatisfactionGroup(**g) for g in ordered],
    )


async def complaint_stats(
    ctx: RequestContext, group_by: str, since: datetime, until: datetime
) -> s.ComplaintStats:
    rows, breakdown = await repo.complaint_stats(ctx.session, group_by, since, until)
    facets: dict[str | None, dict[str, dict[str, int]]] = defaultdict(
        lambda: {"category": {}, "root_cause": {}, "severity": {}}
    )
    for b in breakdown:
        facets[b.key][b.facet][b.value] = int(b.n)
    groups = []
    for r in rows:
        decided = r.fr_decided + r.res_decided
        groups.append(
            s.ComplaintGroup(
                key=r.key,
                received=r.received,
                open=r.open,
                resolved=r.resolved,
                reopened=r.reopened,
                reopen_rate_pct=pct(r.reopened, r.ever_resolved),
                sla_compliance_pct=pct(r.fr_met + r.res_met, decided),
                first_response=s.DurationFigure(
                    count=r.fr_n,
                    p50_seconds=_round(r.fr_p50),
                    p90_seconds=_round(r.fr_p90),
                    sla_met_pct=pct(r.fr_met, r.fr_decided),
                    breached=r.fr_breached,
                ),
                resolution=s.DurationFigure(
                    count=r.res_n,
                    p50_seconds=_round(r.res_p50),
                    p90_seconds=_round(r.res_p90),
                    sla_met_pct=pct(r.res_met, r.res_decided),
                    breached=r.res_breached,
                ),
                by_category=facets[r.key]["category"],
                by_root_cause=facets[r.key]["root_cause"],
                by_severity=facets[r.key]["severity"],
            )
        )
    return s.ComplaintStats(
        from_=since,
        to=until,
        group_by=group_by,
        groups=groups,
    )


async def churn_risk(
    ctx: RequestContext,
    min_score: int,
    level: str | None,
    tier: str | None,
    owner_id: str | None,
    cursor: str | None,
    limit: int,
) -> s.ChurnRiskPage:
    decoded = _cursor(cursor, "s", "id")
    after = None
    if decoded is not None:
        try:
            after = (int(decoded["s"]), uuid.UUID(decoded["id"]))
        except ValueError as exc:
            raise InvalidCursor("The cursor is not one this API issued") from exc
    rows = await repo.churn_ranking(ctx.session, min_score, level, tier, owner_id, after, limit + 1)
    items = [
        s.ChurnRiskEntry(
            customer_id=r.customer_id,
            score=r.churn_score,
            level=r.churn_level,
            reasons=r.churn_reasons or [],
            lifecycle_stage=r.lifecycle_stage,
            tier=r.tier,
            contribution=r.contribution,
            last_purchase_at=r.last_purchase_at,
            owner_id=r.owner_id,
        )
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit and items:
        next_cursor = encode_cursor({"s": items[-1].score, "id": str(items[-1].customer_id)})
    return s.ChurnRiskPage(items=items, next_cursor=next_cursor)


async def rfm_segments(ctx: RequestContext) -> s.RfmSegments:
    session = ctx.session
    rows, without = await repo.rfm_segments(session)
    by_segment = {r.segment: r for r in rows}
    scored = sum(r.n for r in rows)
    segments = []
    for name, description in RFM_SEGMENTS:
        r = by_segment.get(name)
        segments.append(
            s.RfmSegmentSummary(
                segment=name,
                description=description,
                customers=r.n if r else 0,
                share_pct=pct(r.n, scored) if r else (0.0 if scored else None),
                avg_recency_days=_round(r.recency) if r else None,
                avg_frequency=_round(r.freq) if r else None,
                avg_monetary=round(r.monetary, 2) if r else None,
            )
        )
    return s.RfmSegments(
        computed_at=await repo.last_rerank(session),
        customers_scored=scored,
        customers_without_purchase=without,
        segments=segments,
    )


RECOMPUTE_ATTEMPTS = 20


async def recompute(ctx: RequestContext) -> RerankResult:
    """The global re-rank now, unless a re-rank, rebuild or batch holds the projections."""
    for _ in range(RECOMPUTE_ATTEMPTS):  # a background re-rank ends within seconds
        if await try_lock_rerank(ctx.session):
            break
        await asyncio.sleep(0.5)
    else:
        raise RebuildRunning("A re-rank or rebuild holds the projections; retry")
    await lock_state(ctx.session)  # a consumer batch holds it for its own short transaction
    result = await rerank(ctx.session, settings_of(ctx))
    await ctx.audit_change("update", "rerank")
    return result
