"""The metric definitions' pure reference: ABC tiers, RFM rank scores and segments.

services/analytics/tiering.py is what the SQL re-rank is property-tested against
(tests/analytics), so it has to be right on its own first.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.tiering import RFM_SEGMENTS, abc_tiers, rank_scores, rfm_segment
from tests.analytics.factories import ids


def test_abc_cut_points_are_exclusive_so_exact_edges_fall_to_the_next_tier() -> None:
    # 80, 15, 5 of 100: the 2nd has exactly 0.80 ranked before it, the 3rd exactly 0.95.
    a, b, c = ids(3)
    contributions = {a: Decimal("80"), b: Decimal("15"), c: Decimal("5")}
    assert abc_tiers(contributions) == {a: "A", b: "B", c: "C"}
    # A hair less before each of them and they move up a tier.
    nudged = {a: Decimal("79.99"), b: Decimal("15"), c: Decimal("5.01")}
    assert abc_tiers(nudged) == {a: "A", b: "A", c: "B"}


def test_abc_ranks_by_contribution_then_customer_id() -> None:
    top, first, second = ids(3)  # ascending ids: first < second
    tiers = abc_tiers({top: Decimal("60"), second: Decimal("20"), first: Decimal("20")})
    # before(first) = 60 of 100 < 0.8: A; before(second) = 80 of 100: B.
    assert tiers == {top: "A", first: "A", second: "B"}


def test_zero_and_negative_contributions_are_c_and_do_not_count_in_the_total() -> None:
    a, b, zero, negative = ids(4)
    tiers = abc_tiers(
        {a: Decimal("50"), b: Decimal("50"), zero: Decimal("0"), negative: Decimal("-1000")}
    )
    # The loss does not shrink the total: 50 of 100 is before b, so b is still A.
    assert tiers == {a: "A", b: "A", zero: "C", negative: "C"}
    assert abc_tiers({zero: Decimal("0"), negative: Decimal("-1")}) == {zero: "C", negative: "C"}
    assert abc_tiers({}) == {}


def test_abc_shares_are_configurable() -> None:
    a, b, c, d = ids(4)
    equal = {x: Decimal("25") for x in (a, b, c, d)}
    assert abc_tiers(equal) == {a: "A", b: "A", c: "A", d: "A"}  # before: 0, .25, .5, .75
    assert abc_tiers(equal, a_share=0.5, b_share=0.75) == {a: "A", b: "A", c: "B", d: "C"}


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


def test_ties_take_the_position_of_the_first_of_them() -> None:
    a, b, c, d = ids(4)
    scores = rank_scores({a: 1, b: 1, c: 2, d: 3}, higher_is_better=True)
    # positions 1, 1 (tied), 3, 4 of 4 -> floor(5 (p - 1) / 4) + 1: 1, 1, 3, 4
    assert scores == {a: 1, b: 1, c: 3, d: 4}
    recency = rank_scores({a: 30, b: 1}, higher_is_better=False)  # 30 days is worse: p = 1
    assert recency == {a: 1, b: 3}


def test_one_time_buyers_in_a_base_of_mostly_one_time_buyers_score_one() -> None:
    customers = ids(10)
    frequency = {x: 1 for x in customers[:8]} | {customers[8]: 2, customers[9]: 5}
    scores = rank_scores(frequency, higher_is_better=True)
    assert [scores[x] for x in customers] == [1] * 8 + [5, 5]  # p = 9, 10 of 10


def test_rank_scores_spread_distinct_values_over_one_to_five() -> None:
    customers = ids(10)
    spend = {x: Decimal(10 * (i + 1)) for i, x in enumerate(customers)}
    scores = rank_scores(spend, higher_is_better=True)
    assert [scores[x] for x in customers] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    days_since = rank_scores(spend, higher_is_better=False)  # fewer days is better
    assert [days_since[x] for x in customers] == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    only = rank_scores({customers[0]: 7}, higher_is_better=True)
    assert only == {customers[0]: 1}
    assert rank_scores({}, higher_is_better=True) == {}


def _brute_force_score(values: dict[uuid.UUID, int], key: uuid.UUID, better: bool) -> int:
    """The definition read literally: p = 1 + number of customers strictly worse."""
    mine = values[key]
    worse = sum(1 for v in values.values() if (v < mine if better else v > mine))
    return 5 * worse // len(values) + 1


heavy_ties = st.dictionaries(
    st.uuids(), st.integers(min_value=0, max_value=4), min_size=1, max_size=60
)


@settings(max_examples=400, deadline=None)
@given(heavy_ties, st.booleans())
def test_rank_scores_equal_the_brute_force_definition_with_heavy_ties(
    values: dict[uuid.UUID, int], higher_is_better: bool
) -> None:
    scores = rank_scores(values, higher_is_better)
    assert scores == {k: _brute_force_score(values, k, higher_is_better) for k in values}
    # Ties share a score; a better value never scores lower; the worst always scores 1.
    ordered = sorted(values, key=lambda k: values[k], reverse=not higher_is_better)
    assert [scores[k] for k in ordered] == sorted(scores[k] for k in ordered)
    assert scores[ordered[0]] == 1
    assert set(scores.values()) <= {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "champions"),
        (4, 4, 4, "champions"),
        (4, 4, 3, "loyal_customers"),
        (3, 5, 1, "loyal_customers"),
        (5, 2, 5, "potential_loyalists"),
        (4, 1, 5, "new_customers"),
        (3, 3, 3, "need_attention"),
        (3, 1, 1, "need_attention"),
        (2, 4, 5, "cant_lose_them"),
        (1, 5, 5, "cant_lose_them"),
        (2, 3, 3, "at_risk"),
        (1, 3, 3, "lost"),
    ],
)
def test_rfm_segment_is_the_first_rule_that_matches(r: int, f: int, m: int, segment: str) -> None:
    assert rfm_segment(r, f, m) == segment


def test_every_score_combination_has_a_documented_segment() -> None:
    documented = {name for name, _ in RFM_SEGMENTS}
    seen = {rfm_segment(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    assert seen == documented
