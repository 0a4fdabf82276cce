"""The metrics in SQL: facts refresh, lifecycle and churn, ABC and RFM (window functions).

Each step runs as one set-based statement, either for a list of customers (the consumer, per
batch) or for every customer (the debounced global re-rank). Steps that publish write their
events into the outbox in the same statement, only for rows whose value actually changed, so
the event and the projection change commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.analytics.config import Settings
from shared.contracts.analytics import (
    CustomerChurnRiskChanged,
    CustomerLifecycleChanged,
    CustomerTierChanged,
)

Executor = AsyncSession | AsyncConnection
SOURCE = "/kehu/analytics"
IDS = sa.bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))


@dataclass(frozen=True)
class Clock:
    """The instants a computation uses, all derived from one `as_of`."""

    as_of: datetime
    window_start: datetime
    half_start: datetime
    recent_start: datetime

    @classmethod
    def at(cls, as_of: datetime, settings: Settings) -> Clock:
        window = timedelta(days=settings.window_days)
        return cls(
            as_of=as_of,
            window_start=as_of - window,
            half_start=as_of - window / 2,
            recent_start=as_of - timedelta(days=settings.recent_days),
        )

    def params(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "window_start": self.window_start,
            "half_start": self.half_start,
            "recent_start": self.recent_start,
        }


def _filter(ids: Collection[uuid.UUID] | None, column: str = "customer_id") -> str:
    return "" if ids is None else f" AND {column} = ANY(:ids)"


async def _run(
    db: Executor, sql: str, params: dict[str, Any], ids: Collection[uuid.UUID] | None
) -> Any:
    statement = sa.text(sql)
    if ids is not None:
        statement = statement.bindparams(IDS)
        params = {**params, "ids": list(ids)}
    return await db.execute(statement, params)


def _emit_sql(contract: type[Any], source_rows: str, data: str, where: str) -> str:
    """INSERT INTO outbox ... SELECT: events built in SQL with the contract's type and topic.

    Never about an erased customer's anonymous row: nothing is published about it. Event ids
    are time-ordered (UUIDv7, PostgreSQL 18): a re-rank writes up to three events per customer,
    and random ids scattered those inserts over the whole unique index on `event_id` (a page
    read and dirtied per event at millions of rows); ordered ones append to its right edge."""
    return f"""
        INSERT INTO outbox (event_id, type, source, subject, partition_key, topic, time, data)
        SELECT uuidv7(), '{contract.event_type()}', '{SOURCE}', customer_id::text,
               customer_id::text, '{contract.topic}', CAST(:as_of AS timestamptz),
               jsonb_build_object('customer_id', customer_id,
                                  'occurred_at', CAST(:as_of AS timestamptz), {data})
        FROM {source_rows} WHERE NOT erased AND ({where})
        RETURNING 1
    """


FACTS_CTES = """
WITH target AS (
    SELECT customer_id FROM customer_facts WHERE true {f}
),
p AS (
    SELECT customer_id,
           count(*) FILTER (WHERE occurred_at > :window_start) AS n_window,
           count(*) AS n_total,
           coalesce(sum(reporting_amount) FILTER (WHERE occurred_at > :window_start), 0)
               AS revenue,
           coalesce(sum(reporting_margin) FILTER (WHERE occurred_at > :window_start), 0)
               AS contribution,
           coalesce(sum(reporting_amount) FILTER (WHERE occurred_at > :half_start), 0)
               AS revenue_recent,
           min(occurred_at) AS first_at,
           max(occurred_at) AS last_at
    FROM purchases
    -- Only reporting-currency money is ever added (a purchase without it does not count).
    WHERE NOT cancelled AND reporting_amount IS NOT NULL AND occurred_at <= :as_of {f}
    GROUP BY customer_id
),
r AS (
    SELECT rf.customer_id,
           coalesce(sum(rf.reporting_amount), 0) AS amount,
           coalesce(sum(rf.reporting_margin), 0) AS margin,
           coalesce(sum(rf.reporting_amount) FILTER (WHERE rf.occurred_at > :half_start), 0)
               AS amount_recent
    FROM refunds rf LEFT JOIN purchases pu ON pu.purchase_id = rf.purchase_id
    WHERE rf.occurred_at > :window_start AND rf.occurred_at <= :as_of
      AND NOT coalesce(pu.cancelled, false) {rf}
    GROUP BY rf.customer_id
),
i AS (
    SELECT customer_id, count(*) AS n, max(occurred_at) AS last_at
    FROM interactions WHERE occurred_at <= :as_of {f}
    GROUP BY customer_id
),
c AS (
    SELECT customer_id,
           count(*) AS total,
           count(*) FILTER (WHERE coalesce(status, 'received') NOT IN ('resolved', 'closed'))
               AS open,
           count(*) FILTER (WHERE (first_response_breached OR resolution_breached)
                              AND received_at > :recent_start) AS breaches,
           bool_or(received_at > :recent_start
                   OR (rating <= 2 AND rated_at > :recent_start)) AS unhappy
    FROM complaints WHERE true {f}
    GROUP BY customer_id
),
s AS (
    SELECT sv.customer_id
    FROM surveys sv
    WHERE sv.occurred_at > :recent_start AND sv.occurred_at <= :as_of {sv}
      AND (sv.nps <= 6 OR EXISTS (SELECT 1 FROM survey_answers a
                                  WHERE a.survey_id = sv.survey_id AND a.score <= 2))
    GROUP BY sv.customer_id
),
fresh AS (
    SELECT t.customer_id,
           coalesce(p.revenue, 0) - coalesce(r.amount, 0) AS revenue,
           coalesce(p.contribution, 0) - coalesce(r.margin, 0) AS contribution,
           coalesce(p.revenue_recent, 0) - coalesce(r.amount_recent, 0) AS revenue_recent,
           (coalesce(p.revenue, 0) - coalesce(p.revenue_recent, 0))
             - (coalesce(r.amount, 0) - coalesce(r.amount_recent, 0)) AS revenue_prior,
           coalesce(p.n_window, 0) AS purchase_count,
           coalesce(p.n_total, 0) AS purchases_total,
           p.first_at, p.last_at,
           i.last_at AS last_contact_at,
           coalesce(i.n, 0) AS interaction_count,
           coalesce(c.total, 0) AS complaints_total,
           coalesce(c.open, 0) AS complaints_open,
           coalesce(c.breaches, 0) AS sla_breaches_recent,
           (coalesce(c.unhappy, false) OR s.customer_id IS NOT NULL) AS dissatisfied_recent
    FROM target t
    LEFT JOIN p ON p.customer_id = t.customer_id
    LEFT JOIN r ON r.customer_id = t.customer_id
    LEFT JOIN i ON i.customer_id = t.customer_id
    LEFT JOIN c ON c.customer_id = t.customer_id
    LEFT JOIN s ON s.customer_id = t.customer_id
)
"""

REFRESH_FACTS = (
    FACTS_CTES
    + """
UPDATE customer_facts f SET
    revenue = x.revenue, contribution = x.contribution,
    revenue_recent = x.revenue_recent, revenue_prior = x.revenue_prior,
    purchase_count = x.purchase_count, purchases_total = x.purchases_total,
    first_purchase_at = x.first_at, last_purchase_at = x.last_at,
    last_contact_at = x.last_contact_at, interaction_count = x.interaction_count,
    complaints_total = x.complaints_total, complaints_open = x.complaints_open,
    sla_breaches_recent = x.sla_breaches_recent, dissatisfied_recent = x.dissatisfied_recent,
    facts_at = CAST(:as_of AS timestamptz)
FROM fresh x
WHERE f.customer_id = x.customer_id
  AND (f.facts_at IS NULL
       OR (f.revenue, f.contribution, f.revenue_recent, f.revenue_prior, f.purchase_count,
       f.purchases_total, f.first_purchase_at, f.last_purchase_at, f.last_contact_at,
       f.interaction_count, f.complaints_total, f.complaints_open, f.sla_breaches_recent,
       f.dissatisfied_recent)
      IS DISTINCT FROM
      (x.revenue, x.contribution, x.revenue_recent, x.revenue_prior, x.purchase_count,
       x.purchases_total, x.first_at, x.last_at, x.last_contact_at, x.interaction_count,
       x.complaints_total, x.complaints_open, x.sla_breaches_recent, x.dissatisfied_recent))
"""
)


async def refresh_facts(
    db: Executor, clock: Clock, ids: Collection[uuid.UUID] | None = None
) -> None:
    """Recompute the window facts of `ids` (or everyone) from the fact tables."""
    sql = REFRESH_FACTS.format(
        f=_filter(ids), rf=_filter(ids, "rf.customer_id"), sv=_filter(ids, "sv.customer_id")
    )
    await _run(db, sql, clock.params(), ids)


LIFECYCLE_CTES = """
d AS (
    SELECT customer_id, lifecycle_stage AS old_stage, churn_score AS old_score,
           churn_level AS old_level, churn_reasons AS old_reasons,
           lifecycle_next_at AS old_next_at, last_purchase_at, purchases_total, purchase_count,
           dissatisfied_recent, complaints_open,
           sla_breaches_recent, revenue_recent, revenue_prior, last_contact_at,
           extract(epoch FROM (CAST(:as_of AS timestamptz) - last_purchase_at)) / 86400.0
               AS idle_days,
           CASE WHEN purchases_total >= 2
                THEN greatest(CAST(:min_interval AS double precision),
                              extract(epoch FROM (last_purchase_at - first_purchase_at))
                              / 86400.0 / (purchases_total - 1))
                ELSE CAST(:default_interval AS double precision) END AS interval_days
    FROM {source}
    WHERE merged_into IS NULL {f}
),
k AS MATERIALIZED (
    SELECT *, idle_days / interval_days AS idle_ratio,
           -- Idle days a second ago: an instant within a second of a threshold (float
           -- rounding) counts as before it, so the threshold stays ahead (`next_at`).
           idle_days - 1 / 86400.0 AS idle_before FROM d
),
calc AS MATERIALIZED (
    SELECT customer_id, old_stage, old_score, old_level, old_reasons, old_next_at,
        CASE WHEN purchases_total = 0 THEN 'prospect'
             WHEN idle_ratio > :churned_factor THEN 'churned'
             WHEN idle_ratio > :at_risk_factor THEN 'at_risk'
             WHEN purchase_count >= :loyal_min AND NOT dissatisfied_recent THEN 'loyal'
             WHEN purchases_total >= 2 THEN 'repeat'
             ELSE 'first_purchase' END AS stage,
        least(100,
            CASE WHEN purchases_total = 0 THEN 0
                 WHEN idle_ratio > :churned_factor THEN 50
                 WHEN idle_ratio > :at_risk_factor THEN 30
                 WHEN idle_ratio > 1 THEN 15 ELSE 0 END
            + CASE WHEN dissatisfied_recent THEN 20 ELSE 0 END
            + least(complaints_open, 2) * 10
            + CASE WHEN sla_breaches_recent > 0 THEN 10 ELSE 0 END
            + CASE WHEN revenue_prior > 0 AND revenue_recent < revenue_prior * 0.5
                   THEN 15 ELSE 0 END
            + CASE WHEN purchases_total > 0
                    AND (last_contact_at IS NULL OR last_contact_at <= :recent_start)
                   THEN 5 ELSE 0 END
        )::int AS score,
        array_remove(ARRAY[
            CASE WHEN purchases_total > 0 AND idle_ratio > 1 THEN
                format('no purchase in %s days: %sx the usual interval of %s days',
                       floor(idle_days)::int, round(idle_ratio::numeric, 1),
                       round(interval_days::numeric)) END,
            CASE WHEN dissatisfied_recent THEN
                format('dissatisfaction in the last %s days (low survey score, '
                       'NPS detractor or complaint)', CAST(:recent_days AS int)) END,
            CASE WHEN complaints_open > 0 THEN
                format('%s open complaint(s)', complaints_open) END,
            CASE WHEN sla_breaches_recent > 0 THEN
                format('%s complaint SLA breach(es) in the last %s days',
                       sla_breaches_recent, CAST(:recent_days AS int)) END,
            CASE WHEN revenue_prior > 0 AND revenue_recent < revenue_prior * 0.5 THEN
                format('spend down %s%% against the previous half-window',
                       round((1 - revenue_recent / revenue_prior) * 100)) END,
            CASE WHEN purchases_total > 0
                  AND (last_contact_at IS NULL OR last_contact_at <= :recent_start) THEN
                format('no contact in the last %s days', CAST(:recent_days AS int)) END
        ]::text[], NULL) AS reasons,
        -- From when time alone can change stage, score or reasons (the other inputs are
        -- facts, which change only with events or window edges): the idle ratio passing 1,
        -- the at-risk or churned factor; past 1, the whole idle days and the ratio's first
        -- decimal in the reason text; the last contact leaving the recent days. A second
        -- early; 'infinity' without a purchase. The re-rank recomputes only customers past it.
        CASE WHEN purchases_total = 0 THEN CAST('infinity' AS timestamptz) ELSE coalesce(least(
            last_purchase_at + make_interval(secs => 86400 * least(
                CASE WHEN interval_days > idle_before THEN interval_days END,
                CASE WHEN interval_days * :at_risk_factor > idle_before
                     THEN interval_days * :at_risk_factor END,
                CASE WHEN interval_days * :churned_factor > idle_before
                     THEN interval_days * :churned_factor END,
                CASE WHEN idle_before >= interval_days THEN floor(idle_before) + 1 END,
                CASE WHEN idle_before >= interval_days
                     THEN (floor(idle_before / interval_days * 10 + 0.5) + 0.5) / 10
                          * interval_days END)),
            CASE WHEN last_contact_at + make_interval(secs => 86400 * :recent_days)
                      > CAST(:as_of AS timestamptz) - interval '1 second'
                 THEN last_contact_at + make_interval(secs => 86400 * :recent_days) END
        ) - interval '1 second', CAST('infinity' AS timestamptz)) END AS next_at
    FROM k
),
leveled AS MATERIALIZED (
    SELECT *, CASE WHEN score >= :high_from THEN 'high'
                   WHEN score >= :medium_from THEN 'medium' ELSE 'low' END AS level
    FROM calc
)
"""

LIFECYCLE_AND_CHURN = (
    "WITH "
    + LIFECYCLE_CTES
    + """,
changed AS (
    UPDATE customer_facts f
    SET lifecycle_stage = l.stage, churn_score = l.score, churn_level = l.level,
        churn_reasons = l.reasons, lifecycle_next_at = l.next_at
    FROM leveled l
    WHERE f.customer_id = l.customer_id
      AND (l.old_stage, l.old_score, l.old_level, l.old_reasons, l.old_next_at)
          IS DISTINCT FROM (l.stage, l.score, l.level, l.reasons, l.next_at)
    RETURNING l.customer_id, l.stage, l.old_stage, l.score, l.old_score, l.level, l.reasons,
              f.erased
),
lifecycle_events AS ({lifecycle_emit}),
churn_events AS ({churn_emit})
SELECT (SELECT count(*) FROM lifecycle_events) AS lifecycle,
       (SELECT count(*) FROM churn_events) AS churn
"""
)


def _lifecycle_and_churn_sql(ids: Collection[uuid.UUID] | None) -> str:
    lifecycle_emit = _emit_sql(
        CustomerLifecycleChanged,
        "changed",
        "'stage', stage, 'previous_stage', old_stage",
        "stage IS DISTINCT FROM old_stage",
    )
    churn_emit = _emit_sql(
        CustomerChurnRiskChanged,
        "changed",
        "'score', score, 'previous_score', old_score, 'level', level, 'reasons', to_jsonb(reasons)",
        "score <> coalesce(old_score, 0)",
    )
    return LIFECYCLE_AND_CHURN.format(
        f=_filter(ids),
        source="customer_facts",
        lifecycle_emit=lifecycle_emit,
        churn_emit=churn_emit,
    )


def lifecycle_params(clock: Clock, settings: Settings) -> dict[str, Any]:
    """The bind parameters of `LIFECYCLE_CTES` (the clock's window edges and the settings)."""
    return {
        **clock.params(),
        "min_interval": settings.min_purchase_interval_days,
        "default_interval": settings.default_purchase_interval_days,
        "churned_factor": settings.churned_factor,
        "at_risk_factor": settings.at_risk_factor,
        "loyal_min": settings.loyal_min_purchases,
        "recent_days": settings.recent_days,
        "high_from": settings.churn_high_from,
        "medium_from": settings.churn_medium_from,
    }


async def lifecycle_and_churn(
    db: Executor, clock: Clock, settings: Settings, ids: Collection[uuid.UUID] | None = None
) -> tuple[int, int]:
    """Lifecycle stage and churn risk; (lifecycle events, churn events) emitted."""
    params = lifecycle_params(clock, settings)
    row = (await _run(db, _lifecycle_and_churn_sql(ids), params, ids)).one()
    return int(row.lifecycle), int(row.churn)


ABC_CTES = """
ranked AS (
    SELECT customer_id, contribution, tier AS old_tier,
           coalesce(sum(greatest(contribution, 0)) OVER (
               w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
           -- The total once (an InitPlan), not a window over all rows kept in memory.
           (SELECT sum(greatest(contribution, 0)) FROM {source} WHERE merged_into IS NULL)
               AS total
    FROM {source}
    WHERE merged_into IS NULL
    WINDOW w AS (ORDER BY contribution DESC, customer_id ASC)
),
tiered AS (
    SELECT customer_id, contribution, old_tier,
           CASE WHEN contribution <= 0 THEN 'C'
                WHEN before < CAST(:a_share AS numeric) * total THEN 'A'
                WHEN before < CAST(:b_share AS numeric) * total THEN 'B'
                ELSE 'C' END AS tier
    FROM ranked
)
"""

ABC = (
    "WITH "
    + ABC_CTES
    + """,
changed AS (
    UPDATE customer_facts f SET tier = t.tier
    FROM tiered t
    WHERE f.customer_id = t.customer_id AND f.tier IS DISTINCT FROM t.tier
    RETURNING t.customer_id, t.tier, t.old_tier, t.contribution, f.erased
),
cleared AS (
    UPDATE customer_facts SET tier = NULL
    WHERE merged_into IS NOT NULL AND tier IS NOT NULL
    RETURNING 1
),
events AS ({emit})
SELECT (SELECT count(*) FROM events) AS events
"""
)


async def rank_abc(db: Executor, clock: Clock, settings: Settings) -> int:
    """ABC tiers for every customer in one window-function pass; tier_changed events emitted."""
    emit = _emit_sql(
        CustomerTierChanged,
        "changed",
        "'tier', tier, 'previous_tier', old_tier, 'contribution', contribution::text",
        "true",
    )
    params = {
        "as_of": clock.as_of,
        "a_share": Decimal(str(settings.tier_a_share)),
        "b_share": Decimal(str(settings.tier_b_share)),
    }
    return int(
        (
            await db.execute(sa.text(ABC.format(emit=emit, source="customer_facts")), params)
        ).scalar_one()
    )


RFM_CTES = """
base AS (
    SELECT customer_id, purchase_count AS frequency, revenue AS monetary,
           rfm_recency_days AS old_recency, rfm_r AS old_r, rfm_f AS old_f, rfm_m AS old_m,
           rfm_segment AS old_segment,
           floor(extract(epoch FROM (CAST(:as_of AS timestamptz) - last_purchase_at))
                 / 86400)::int AS recency
    FROM {source}
    WHERE merged_into IS NULL AND last_purchase_at IS NOT NULL
),
buyers AS (
    SELECT count(*) AS n FROM {source} WHERE merged_into IS NULL AND last_purchase_at IS NOT NULL
),
scored AS (
    -- rank() is the position of the first of a run of ties: ties share the lowest score.
    SELECT customer_id, recency, old_recency, old_r, old_f, old_m, old_segment,
           (5 * (rank() OVER (ORDER BY recency DESC) - 1) / buyers.n + 1)::int AS r,
           (5 * (rank() OVER (ORDER BY frequency) - 1) / buyers.n + 1)::int AS f,
           (5 * (rank() OVER (ORDER BY monetary) - 1) / buyers.n + 1)::int AS m
    FROM base CROSS JOIN buyers
),
segmented AS (
    SELECT *, CASE WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'champions'
                   WHEN r >= 3 AND f >= 4 THEN 'loyal_customers'
                   WHEN r >= 4 AND f >= 2 THEN 'potential_loyalists'
                   WHEN r >= 4 THEN 'new_customers'
                   WHEN r = 3 THEN 'need_attention'
                   WHEN f >= 4 THEN 'cant_lose_them'
                   WHEN r = 2 THEN 'at_risk'
                   ELSE 'lost' END AS segment
    FROM scored
)
"""

RFM = (
    "WITH "
    + RFM_CTES
    + """,
changed AS (
    UPDATE customer_facts c
    SET rfm_recency_days = s.recency, rfm_r = s.r, rfm_f = s.f, rfm_m = s.m,
        rfm_segment = s.segment
    FROM segmented s
    WHERE c.customer_id = s.customer_id
      AND (c.rfm_recency_days, c.rfm_r, c.rfm_f, c.rfm_m, c.rfm_segment)
          IS DISTINCT FROM (s.recency, s.r, s.f, s.m, s.segment)
    RETURNING 1
),
cleared AS (
    UPDATE customer_facts
    SET rfm_recency_days = NULL, rfm_r = NULL, rfm_f = NULL, rfm_m = NULL, rfm_segment = NULL
    WHERE (last_purchase_at IS NULL OR merged_into IS NOT NULL) AND rfm_r IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM changed) + (SELECT count(*) FROM cleared)
"""
)


async def score_rfm(db: Executor, clock: Clock) -> int:
    """RFM rank scores (1-5, ties share the lowest) and segments of buying customers."""
    sql = RFM.format(source="customer_facts")
    return int((await db.execute(sa.text(sql), {"as_of": clock.as_of})).scalar_one())
