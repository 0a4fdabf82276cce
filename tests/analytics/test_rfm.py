"""RFM by rank in SQL: the pure reference (tests/unit) on heavy ties, and one-time buyers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.analytics.metrics_sql import Clock, score_rfm
from services.analytics.tiering import rank_scores, rfm_segment
from shared.db import create_engine, session_factory
from tests.analytics.conftest import AnalyticsDb, analytics_settings
from tests.analytics.factories import NOW, created, days_ago, ids, purchase

# Few distinct values per measure, many customers: most of them tie with others.
customer_rows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),  # days since the last purchase
        st.integers(min_value=1, max_value=3),  # purchases in the window
        st.sampled_from([Decimal("10"), Decimal("10"), Decimal("25.5"), Decimal("99")]),
    ),
    min_size=1,
    max_size=80,
)


async def _sql_scores(url: str, rows: list[tuple[int, int, Decimal]]) -> dict[uuid.UUID, Any]:
    engine = create_engine(analytics_settings(url))
    try:
        customers = {uuid.uuid4(): row for row in rows}
        async with session_factory(engine).begin() as session:
            await session.execute(sa.text("TRUNCATE customer_facts"))
            await session.execute(
                sa.text(
                    "INSERT INTO customer_facts (customer_id, purchase_count, revenue, "
                    "last_purchase_at) VALUES (:c, :f, :m, :at)"
                ),
                [
                    {"c": c, "f": f, "m": m, "at": NOW - timedelta(days=r)}
                    for c, (r, f, m) in customers.items()
                ],
            )
            await score_rfm(session, Clock.at(NOW, analytics_settings(url)))
        async with engine.connect() as conn:
            result = await conn.execute(
                sa.text("SELECT customer_id, rfm_r, rfm_f, rfm_m, rfm_segment FROM customer_facts")
            )
            scored = {r.customer_id: r for r in result}
        return {"customers": customers, "scored": scored}
    finally:
        await engine.dispose()


def test_sql_rfm_equals_the_reference_with_heavy_ties(analytics_db: AnalyticsDb) -> None:
    url = analytics_db.settings.service_database_url
    assert url is not None

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(customer_rows)
    def check(rows: list[tuple[int, int, Decimal]]) -> None:
        # A sync test: each example runs its own short event loop against the real database.
        result = asyncio.run(_sql_scores(url, rows))
        customers, scored = result["customers"], result["scored"]
        r = rank_scores({c: v[0] for c, v in customers.items()}, higher_is_better=False)
        f = rank_scores({c: v[1] for c, v in customers.items()}, higher_is_better=True)
        m = rank_scores({c: v[2] for c, v in customers.items()}, higher_is_better=True)
        for c in customers:
            got = scored[c]
            assert (got.rfm_r, got.rfm_f, got.rfm_m) == (r[c], f[c], m[c])
            assert got.rfm_segment == rfm_segment(r[c], f[c], m[c])

    check()


async def test_one_time_buyers_of_a_mostly_one_time_base_are_never_champions_or_loyal(
    analytics_db: AnalyticsDb,
) -> None:
    customers = ids(10)
    once, repeat = customers[:8], customers[8:]
    events = [created(x) for x in customers]
    # The one-time buyers bought recently and for a lot: only F holds them back.
    events += [purchase(x, "50", amount="500", at=days_ago(1 + i)) for i, x in enumerate(once)]
    for x in repeat:
        events += [purchase(x, "5", amount="20", at=days_ago(30 + n)) for n in range(3)]
    await analytics_db.apply(events)
    await analytics_db.rerank()
    facts = await analytics_db.facts()

    assert {facts[x].rfm_f for x in once} == {1}  # all eight share position 1 of 10
    assert {facts[x].rfm_f for x in repeat} == {5}  # position 9 of 10: floor(5 * 8 / 10) + 1
    segments = {facts[x].rfm_segment for x in once}
    assert not segments & {"champions", "loyal_customers"}
    # Recent one-time buyers are new customers (R >= 4) or need attention (R = 3).
    assert segments <= {"new_customers", "need_attention", "at_risk", "lost"}
    assert facts[once[0]].rfm_segment == "new_customers"
