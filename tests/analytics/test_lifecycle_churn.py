"""Lifecycle stage and churn risk against hand-computed cases; order and duplicate tolerance."""

from __future__ import annotations

import random
import uuid
from typing import Any

from services.analytics.config import Settings
from services.analytics.metrics_sql import LIFECYCLE_CTES, Clock, lifecycle_params
from shared.contracts.analytics import CustomerChurnRiskChanged, CustomerLifecycleChanged
from shared.contracts.customers import CustomerDimensions, CustomerMerged, CustomerUpdated
from shared.db import create_engine
from tests.analytics.conftest import AnalyticsDb, analytics_settings
from tests.analytics.factories import (
    cancel,
    complaint_flow,
    complaint_received,
    created,
    days_ago,
    event,
    ids,
    interaction,
    purchase,
    refund,
    survey,
)


async def test_lifecycle_stages_and_churn_scores(analytics_db: AnalyticsDb) -> None:
    prospect, first, repeat, loyal, unhappy, at_risk, churned, spend_down = ids(8)
    events = [created(prospect)]
    events.append(purchase(first, "10", at=days_ago(10)))
    events += [purchase(repeat, "10", at=days_ago(d)) for d in (40, 10)]
    events += [purchase(loyal, "10", at=days_ago(d)) for d in (70, 50, 30, 10)]
    events += [purchase(unhappy, "10", at=days_ago(d)) for d in (70, 50, 30, 10)]
    events.append(survey(unhappy, {"overall": 4, "service": 2}, at=days_ago(5)))
    events += [purchase(at_risk, "10", at=days_ago(d)) for d in (100, 80, 60)]
    events += [purchase(churned, "10", at=days_ago(d)) for d in (130, 120, 110)]
    events.append(complaint_received(churned, uuid.uuid4(), days_ago(20)))
    events.append(purchase(spend_down, "10", amount="1000", at=days_ago(300)))
    events.append(purchase(spend_down, "10", amount="100", at=days_ago(20)))
    events += [interaction(x, "phone") for x in (repeat, loyal, unhappy)]
    await analytics_db.apply(events)

    facts = await analytics_db.facts()
    stages = {
        x: facts[x].lifecycle_stage
        for x in (prospect, first, repeat, loyal, unhappy, at_risk, churned, spend_down)
    }
    assert stages == {
        prospect: "prospect",
        first: "first_purchase",
        repeat: "repeat",
        loyal: "loyal",
        unhappy: "repeat",  # 4 purchases, but a service score of 2 five days ago
        at_risk: "at_risk",  # idle 60 days = 3.0x a 20-day rhythm: not above 3x
        churned: "churned",  # idle 110 days = 11x a 10-day rhythm
        spend_down: "repeat",
    }
    scores = {x: (facts[x].churn_score, facts[x].churn_level) for x in stages}
    assert scores == {
        prospect: (0, "low"),
        first: (5, "low"),  # no contact in 90 days
        repeat: (0, "low"),
        loyal: (0, "low"),
        unhappy: (20, "low"),  # recent dissatisfaction
        at_risk: (35, "low"),  # 30 inactivity (> 1.5x) + 5 no contact
        churned: (85, "high"),  # 50 + 20 (complaint) + 10 (open complaint) + 5
        spend_down: (20, "low"),  # 15 spend down 90% + 5 no contact
    }
    assert facts[churned].churn_reasons == [
        "no purchase in 110 days: 11.0x the usual interval of 10 days",
        "dissatisfaction in the last 90 days (low survey score, NPS detractor or complaint)",
        "1 open complaint(s)",
        "no contact in the last 90 days",
    ]
    assert facts[spend_down].churn_reasons[0] == "spend down 90% against the previous half-window"

    lifecycle = [
        CustomerLifecycleChanged.model_validate(e)
        for e in await analytics_db.events("lifecycle_changed")
    ]
    assert {e.customer_id: e.stage for e in lifecycle} == stages
    churn = [
        CustomerChurnRiskChanged.model_validate(e)
        for e in await analytics_db.events("churn_risk_changed")
    ]
    # Score 0 for a new customer is no change: only the non-zero scores were published.
    assert {e.customer_id: e.score for e in churn} == {
        x: s for x, (s, _) in scores.items() if s > 0
    }

    # Time alone moves a customer on: 40 more days idle turns `repeat` (30-day rhythm) at_risk.
    result = await analytics_db.rerank(as_of=days_ago(-40))
    assert result.lifecycle_events > 0
    facts = await analytics_db.facts()
    assert facts[repeat].lifecycle_stage == "at_risk"
    assert (await analytics_db.rerank(as_of=days_ago(-40))).lifecycle_events == 0


async def test_steady_reranks_equal_computing_everyone(fresh_database: Any) -> None:
    """Between full runs the re-rank computes lifecycle and churn risk only for customers whose
    facts changed or whose `lifecycle_next_at` passed; after every run of a series stepping
    through half a year (fractions of days and whole weeks), each customer's stage, score,
    level and reasons equal a computation for everyone at that instant."""
    url = await fresh_database("analytics")
    settings = analytics_settings(url, rerank_full_every_s=10**9)
    db = AnalyticsDb(settings, create_engine(settings))
    rng = random.Random(13)
    events = []
    for customer in ids(40):
        events.append(created(customer))
        for _ in range(rng.choice([0, 1, 1, 2, 3, 5])):
            events.append(purchase(customer, "10", at=days_ago(rng.uniform(0, 120))))
        if rng.random() < 0.5:
            events.append(interaction(customer, "phone", at=days_ago(rng.uniform(0, 80))))
    try:
        await db.apply(events)
        await db.rerank()  # the full run every later one builds on
        offset = 0.0
        for step in [0.3, 0.45, 1, 2.5, 7, 7, 0.01, 13.7, 30, 30, 45, 60]:
            offset += step
            as_of = days_ago(-offset)
            await db.rerank(as_of=as_of)
            stored = {
                r.customer_id: (r.lifecycle_stage, r.churn_score, r.churn_level, r.churn_reasons)
                for r in await db.rows("SELECT * FROM customer_facts WHERE merged_into IS NULL")
            }
            assert stored == await _everyone(db, as_of), f"{offset} days on"
    finally:
        await db.engine.dispose()


async def _everyone(db: AnalyticsDb, as_of: Any) -> dict[Any, Any]:
    """Lifecycle and churn risk of every customer at `as_of`, from the stored facts."""
    settings = db.settings
    params = lifecycle_params(Clock.at(as_of, settings), settings)
    sql = (
        "WITH "
        + LIFECYCLE_CTES.format(source="customer_facts", f="")
        + " SELECT customer_id, stage, score, level, reasons FROM leveled"
    )
    rows = await db.rows(sql, **params)
    return {r.customer_id: (r.stage, r.score, r.level, r.reasons) for r in rows}


def _scenario() -> list[Any]:
    """Events of several customers touching every merge rule, in causal order."""
    a, b, c, merged = ids(4)
    new_dims = CustomerDimensions(
        kind="organisation", customer_number="C-1", industry="energy", owner_id="u-7"
    )
    p1, p2, p3 = purchase(a, "50"), purchase(b, "30"), purchase(merged, "7")
    events = [
        created(a, at=days_ago(300), industry="retail"),
        event(
            CustomerUpdated(
                customer_id=a,
                occurred_at=days_ago(200),
                changed_fields=["industry"],
                dimensions=new_dims,
            )
        ),
        created(b),
        created(merged),
        p1,
        refund(a, p1.data["purchase_id"], margin="10", amount="40"),
        p2,
        cancel(b, p2.data["purchase_id"]),
        purchase(b, "5"),
        p3,
        event(CustomerMerged(customer_id=c, occurred_at=days_ago(3), merged_customer_id=merged)),
        purchase(merged, "11"),  # published by a lagging service after the merge
        survey(c, {"overall": 5}, nps=9),
        interaction(a, "email"),
        *complaint_flow(b, days_ago(6), 100, 2000, rating=4, reopened=True),
    ]
    return events


async def test_any_order_and_replays_give_the_same_facts(fresh_database: Any) -> None:
    events = _scenario()
    results = []
    for order in ("causal", "shuffled"):
        settings: Settings = analytics_settings(await fresh_database("analytics"))
        engine = create_engine(settings)
        db = AnalyticsDb(settings, engine)
        try:
            if order == "causal":
                await db.apply(events)
            else:
                shuffled = list(reversed(events))
                random.Random(7).shuffle(shuffled)
                # Batches of 3, and the purchase events replayed (the upserts are idempotent).
                replays = [e for e in events if e.type.startswith("kehu.purchase.recorded")]
                chunks = [shuffled[i : i + 3] for i in range(0, len(shuffled), 3)]
                await db.apply(*chunks, replays)
            await db.rerank()
            facts = await db.facts()
            results.append(
                {
                    k: {c: v for c, v in r._mapping.items() if c != "facts_at"}
                    for k, r in facts.items()
                }
            )
            complaints = await db.rows("SELECT * FROM complaints")
            results.append([tuple(r) for r in complaints])
        finally:
            await engine.dispose()
    assert results[0] == results[2]
    assert results[1] == results[3]
    facts = results[0]
    survivor = next(
        k
        for k, v in facts.items()
        if v["merged_into"] is None and v["purchases_total"] == 2 and v["contribution"] == 18
    )
    merged = next(k for k, v in facts.items() if v["merged_into"] == survivor)
    assert facts[merged]["tier"] is None
    assert facts[survivor]["contribution"] == 18  # 7 before + 11 after the merge
    industries = {v["industry"] for v in facts.values() if v["profile_known"]}
    assert "energy" in industries and "retail" not in industries
