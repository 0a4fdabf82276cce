"""GDPR for analytics: the customer's profiling data, how it was computed, and its erasure.

Export: the customer's facts row (dimensions, loyalty level, window facts, tier, RFM, lifecycle
stage, churn risk and its reasons), the fact rows it is computed from (purchases, refunds,
interactions, surveys with their answers, complaints), the history of tier, lifecycle and
churn-risk changes analytics published about them, and `definitions`: how each figure is computed.

Erasure (on `customer.erased`, `services.analytics.projection.erase_customer`): the rows move to
a fresh random id that nothing links to the customer, the dimensions and the loyalty level are
cleared, the published
history leaves the event log, and the erasure is recorded in `erased_customers`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from services.analytics import repository as repo
from shared.context import RequestContext
from shared.gdpr import GdprSpec, Holding

DEFINITIONS = {
    "window": "Facts are computed over a trailing window (`window_days`, 365 by default); "
    "cancelled purchases and refunds of them do not count.",
    "revenue": "Sum of the amounts of the customer's purchases in the window minus refunds in "
    "the window.",
    "contribution": "Profit contribution: sum of the margins of the customer's purchases in the "
    "window minus the margins of refunds in the window.",
    "tier": "ABC tier. Customers are ranked by contribution descending, then id ascending; with "
    "`before` the summed positive contribution of the customers ranked before this one and "
    "`total` that of all, the tier is A if before/total < 0.80, else B if < 0.95, else C; a "
    "contribution <= 0 is always C.",
    "rfm": "Recency (days since the last purchase), frequency (purchases in the window) and "
    "monetary (revenue in the window), each scored 1-5 by rank among the n customers with a "
    "purchase: ordered worst first, position p scores floor(5 x (p - 1) / n) + 1, tied values "
    "taking the position of the first of them (5 best; ties share the lowest score); the "
    "segment is the first matching rule: champions "
    "(R>=4, F>=4, M>=4), loyal_customers (R>=3, F>=4), potential_loyalists (R>=4, F>=2), "
    "new_customers (R>=4), need_attention (R=3), cant_lose_them (R<=2, F>=4), at_risk (R=2), "
    "lost.",
    "lifecycle_stage": "prospect (no purchase), first_purchase (1), repeat (2+), loyal (4+ in "
    "the window and no dissatisfaction in the last 90 days), at_risk (no purchase for more than "
    "1.5x, churned more than 3x, the customer's own average interval between purchases; 90 "
    "days with a single purchase).",
    "churn_risk": "0-100, the sum of: inactivity (15 above 1x, 30 above 1.5x, 50 above 3x the "
    "usual interval), dissatisfaction in the last 90 days 20, open complaints 10 each (max 20), "
    "an SLA breach in 90 days 10, spend in the last half-window under half the previous half "
    "15, no contact in 90 days 5; capped at 100. Levels: low < 40 <= medium < 70 <= high. "
    "`churn_reasons` lists each contributing factor.",
    "dissatisfied_recent": "In the last 90 days: a survey score <= 2, an NPS <= 6, a complaint "
    "received, or a complaint rated <= 2.",
    "loyalty_level": "The membership level (its code) the loyalty service last published for "
    "the customer in `loyalty.level_changed`, and when it changed (`loyalty_level_at`); a "
    "change older than the one held is ignored.",
    "history": "The tier, lifecycle and churn-risk changes analytics published about the "
    "customer (kept for the event log's retention period).",
}

KEPT_AFTER_ERASURE = [
    "the customer's figures (amounts, margins, scores, survey answers, complaint timings) under "
    "a random anonymous id with no dimensions, so tier counts, revenue and satisfaction totals "
    "still add up (by dimension they count as unknown)",
    "the date of the erasure",
]


async def export(ctx: RequestContext, customer_id: uuid.UUID) -> Holding:
    session = ctx.session
    survivor = await repo.resolve(session, customer_id)
    facts = await repo.facts_row(session, survivor)
    data: dict[str, object] = {
        "customer_id": survivor,
        "merged_ids": await repo.merged_ids(session, survivor),
        "facts": facts,
        **await repo.customer_rows(session, survivor),
        "history": await repo.published_history(session, survivor),
    }
    if facts is None:
        data = {k: v for k, v in data.items() if k not in ("customer_id", "merged_ids")}
    return Holding(data=data, erased_at=await repo.erased_at(session, customer_id))


async def erasure(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[bool, datetime | None]:
    return (
        await repo.holds_customer(ctx.session, customer_id),
        await repo.erased_at(ctx.session, customer_id),
    )


GDPR = GdprSpec(
    service="analytics",
    export=export,
    erasure=erasure,
    kept_after_erasure=KEPT_AFTER_ERASURE,
    definitions=DEFINITIONS,
    export_description="Analytics holds the customer's profiling data (tier, RFM, lifecycle, "
    "churn risk, contribution, loyalty level), the facts they are computed from and the history "
    "of their changes; `definitions` says how each figure is computed.",
)
