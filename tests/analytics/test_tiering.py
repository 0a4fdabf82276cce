"""ABC tiers and RFM in SQL against hand-computed cases and the pure reference (tests/unit)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from services.analytics.projection import handle_batch
from services.analytics.tiering import abc_tiers, rank_scores, rfm_segment
from shared.contracts.analytics import CustomerTierChanged
from shared.db import session_factory
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import cancel, created, days_ago, ids, purchase, refund


async def test_abc_edges_refunds_cancellations_and_window(analytics_db: AnalyticsDb) -> None:
    # Contributions 80, 15, 5 of a positive total of 100 put the 2nd exactly on 0.80 and the
    # 3rd exactly on 0.95: "< threshold" makes them B and C.
    a, b, c, zero, negative = ids(5)
    big = purchase(a, "100")
    events = [
        *(created(x) for x in (a, b, c, zero, negative)),
        big,
        refund(a, big.data["purchase_id"], margin="20", amount="80"),  # 100 - 20 = 80
        purchase(b, "10"),
        purchase(b, "5"),
        purchase(c, "5"),
        purchase(c, "500", at=days_ago(400)),  # outside the 365-day window
    ]
    cancelled = purchase(b, "1000")
    events += [cancelled, cancel(b, cancelled.data["purchase_id"])]
    lost = purchase(negative, "10")
    events += [lost, refund(negative, lost.data["purchase_id"], margin="30", amount="90")]
    await analytics_db.apply(events)
    await analytics_db.rerank()

    facts = await analytics_db.facts()
    assert {k: facts[k].contribution for k in (a, b, c, zero, negative)} == {
        a: Decimal("80"),
        b: Decimal("15"),
        c: Decimal("5"),
        zero: Decimal("0"),
        negative: Decimal("-20"),
    }
    assert facts[a].revenue == Decimal("400") - Decimal("80")
    tiers = {k: facts[k].tier for k in (a, b, c, zero, negative)}
    assert tiers == {a: "A", b: "B", c: "C", zero: "C", negative: "C"}
    assert tiers == abc_tiers({k: facts[k].contribution for k in tiers})


async def test_ties_break_by_customer_id(analytics_db: AnalyticsDb) -> None:
    top, first, second = ids(3)  # ascending ids: first < second
    await analytics_db.apply([purchase(top, "60"), purchase(second, "20"), purchase(first, "20")])
    await analytics_db.rerank()
    facts = await analytics_db.facts()
    # before(first) = 60 -> 0.6 < 0.8 -> A; before(second) = 80 -> 0.8 -> B.
    assert (facts[top].tier, facts[first].tier, facts[second].tier) == ("A", "A", "B")


async def test_only_customers_with_zero_or_negative_contribution_are_all_c(
    analytics_db: AnalyticsDb,
) -> None:
    zero, negative = ids(2)
    p = purchase(negative, "5")
    await analytics_db.apply(
        [created(zero), p, refund(negative, p.data["purchase_id"], margin="8", amount="20")]
    )
    await analytics_db.rerank()
    facts = await analytics_db.facts()
    assert (facts[zero].tier, facts[negative].tier) == ("C", "C")


async def test_tier_changed_is_published_only_on_an_actual_change(
    analytics_db: AnalyticsDb,
) -> None:
    a, b = ids(2)
    await analytics_db.apply([purchase(a, "90"), purchase(b, "10")])
    first = await analytics_db.rerank()
    assert first.tier_events == 2  # first assignment: previous_tier null
    assert (await analytics_db.rerank()).tier_events == 0
    # b overtakes a: b = 510 (A), a: before = 510 of 600 = 0.85 -> B.
    await analytics_db.apply([purchase(b, "500")])
    assert (await analytics_db.rerank()).tier_events == 2
    events = [
        CustomerTierChanged.model_validate(e) for e in await analytics_db.events("tier_changed")
    ]
    last = {e.customer_id: e for e in events}
    assert (last[b].previous_tier, last[b].tier, last[b].contribution) == ("B", "A", Decimal("510"))
    assert (last[a].previous_tier, last[a].tier) == ("A", "B")
    assert len(events) == 4


async def test_rfm_scores_hand_computed(analytics_db: AnalyticsDb) -> None:
    c = ids(5)
    events = []
    # recency 50, 40, 30, 20, 10 days; frequency 1..5; monetary: c0 and c1 tie.
    for i, customer in enumerate(c):
        for n in range(i + 1):
            events.append(
                purchase(
                    customer, "1", amount="10" if i > 1 else "5", at=days_ago(50 - 10 * i + n * 0)
                )
            )
    await analytics_db.apply(events)
    await analytics_db.rerank()
    facts = await analytics_db.facts()
    assert [facts[x].rfm_r for x in c] == [1, 2, 3, 4, 5]
    assert [facts[x].rfm_f for x in c] == [1, 2, 3, 4, 5]
    # monetary 5, 10, 30, 40, 50: distinct -> 1..5
    assert [facts[x].rfm_m for x in c] == [1, 2, 3, 4, 5]
    assert [facts[x].rfm_recency_days for x in c] == [50, 40, 30, 20, 10]
    assert facts[c[4]].rfm_segment == "champions"
    assert facts[c[0]].rfm_segment == "lost"
    assert facts[c[2]].rfm_segment == rfm_segment(3, 3, 3) == "need_attention"


async def test_sql_rfm_matches_the_reference(analytics_db: AnalyticsDb) -> None:
    c = ids(7)
    counts = [1, 1, 2, 3, 3, 3, 6]
    events = [
        purchase(x, "1", amount=str(5 * (i % 3 + 1)), at=days_ago(5 + (i % 4) * 7))
        for i, x in enumerate(c)
        for _ in range(counts[i])
    ]
    await analytics_db.apply(events)
    await analytics_db.rerank()
    facts = await analytics_db.facts()
    expected_f = rank_scores({x: facts[x].purchase_count for x in c}, True)
    expected_m = rank_scores({x: facts[x].revenue for x in c}, True)
    expected_r = rank_scores({x: facts[x].rfm_recency_days for x in c}, False)
    assert {x: facts[x].rfm_f for x in c} == expected_f
    assert {x: facts[x].rfm_m for x in c} == expected_m
    assert {x: facts[x].rfm_r for x in c} == expected_r
    async with analytics_db.engine.connect() as conn:
        none = await conn.scalar(sa.text("SELECT count(*) FROM customer_facts WHERE rfm_r IS NULL"))
    assert none == 0


async def test_incremental_rerank_sees_facts_leave_the_window_and_backlog_batches(
    analytics_db: AnalyticsDb,
) -> None:
    """Between full re-ranks only customers whose facts may have changed are recomputed:
    a purchase leaving the window with no event at all, and customers a backlog batch
    touched without refreshing them, are among them."""
    old, steady, late = ids(3)
    analytics_db.settings.rerank_full_every_s = 30 * 86_400  # the second run is incremental
    await analytics_db.apply(
        [purchase(old, "500", at=days_ago(364)), purchase(steady, "100", at=days_ago(30))]
    )
    await analytics_db.rerank()  # the first run refreshes everyone
    facts = await analytics_db.facts()
    assert (facts[old].contribution, facts[old].tier) == (Decimal("500"), "A")

    # A backlog batch (no per-customer refresh) for `late`; two days later `old`'s purchase
    # has left the 365-day window although no event said so.
    async with session_factory(analytics_db.engine).begin() as session:
        await handle_batch(
            session,
            [purchase(late, "50", at=days_ago(1))],
            analytics_db.settings,
            incremental=False,
        )
    result = await analytics_db.rerank(as_of=days_ago(-2))
    facts = await analytics_db.facts()
    assert (facts[old].contribution, facts[old].purchase_count) == (Decimal("0"), 0)
    assert (facts[late].contribution, facts[late].purchase_count) == (Decimal("50"), 1)
    # 100 and 50 of 150: before(late) = 100 / 150 < 0.8, both A; old has nothing left: C.
    assert (facts[steady].tier, facts[late].tier, facts[old].tier) == ("A", "A", "C")
    assert result.tier_events == 3  # old A -> C, steady B -> A, late's first tier
    async with analytics_db.engine.connect() as conn:
        state = (
            await conn.execute(sa.text("SELECT last_run_at, last_full_at FROM recompute_state"))
        ).one()
    assert state.last_full_at < state.last_run_at  # the second run was incremental
