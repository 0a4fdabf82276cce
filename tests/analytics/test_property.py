"""ABC is a correct Pareto cut: properties of the reference, and the SQL agrees with it."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.metrics_sql import Clock, rank_abc
from services.analytics.tiering import abc_tiers
from shared.db import session_factory
from tests.analytics.conftest import AnalyticsDb
from tests.analytics.factories import NOW

ORDER = {"A": 0, "B": 1, "C": 2}
contributions = st.dictionaries(
    st.uuids(),
    st.decimals(min_value=-500, max_value=10_000, places=2, allow_nan=False),
    min_size=1,
    max_size=40,
)
shares = st.tuples(
    st.sampled_from([Decimal("0.5"), Decimal("0.7"), Decimal("0.8"), Decimal("0.9")]),
    st.sampled_from([Decimal("0.95"), Decimal("0.99")]),
)


@settings(max_examples=300, deadline=None)
@given(contributions, shares)
def test_abc_tiers_are_a_pareto_cut(values: dict[uuid.UUID, Decimal], cut: tuple) -> None:
    a_share, b_share = cut
    tiers = abc_tiers(values, float(a_share), float(b_share))
    ranked = sorted(values, key=lambda k: (-values[k], k))
    total = sum((max(v, Decimal(0)) for v in values.values()), Decimal(0))
    positive = [k for k in ranked if values[k] > 0]

    # Tiers never go back up along the ranking: A is a prefix, then B, then C.
    levels = [ORDER[tiers[k]] for k in ranked]
    assert levels == sorted(levels)
    assert all(tiers[k] == "C" for k in ranked if values[k] <= 0)
    if not positive:
        return
    assert tiers[positive[0]] == "A"  # the top customer is always A

    def share(tier_set: set[str]) -> Decimal:
        return sum((values[k] for k in positive if tiers[k] in tier_set), Decimal(0))

    a_members = [k for k in ranked if tiers[k] == "A"]
    # A carries at least the A threshold share of the positive contribution...
    assert share({"A"}) >= a_share * total
    # ...and is the smallest such prefix: without its last member it would fall short.
    assert share({"A"}) - values[a_members[-1]] < a_share * total
    ab_members = [k for k in ranked if tiers[k] in ("A", "B")]
    assert share({"A", "B"}) >= b_share * total
    assert share({"A", "B"}) - values[ab_members[-1]] < b_share * total


async def test_sql_ranking_equals_the_reference_on_random_populations(
    analytics_db: AnalyticsDb,
) -> None:
    rng = random.Random(20261123)
    sessions = session_factory(analytics_db.engine)
    for case in range(25):
        size = rng.randint(1, 60)
        values = {
            uuid.uuid4(): Decimal(rng.choice([rng.randint(-300, 3000), 0, 100, 100])) / 4
            for _ in range(size)
        }
        async with sessions.begin() as session:
            await session.execute(sa.text("TRUNCATE customer_facts"))
            await session.execute(
                sa.text("INSERT INTO customer_facts (customer_id, contribution) VALUES (:c, :v)"),
                [{"c": k, "v": v} for k, v in values.items()],
            )
            await rank_abc(session, Clock.at(NOW, analytics_db.settings), analytics_db.settings)
        rows = await analytics_db.rows("SELECT customer_id, tier FROM customer_facts")
        assert {r.customer_id: r.tier for r in rows} == abc_tiers(values), f"case {case}"
