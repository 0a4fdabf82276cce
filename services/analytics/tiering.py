"""The metric definitions as pure functions: the reference the SQL is tested against."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

Tier = Literal["A", "B", "C"]


def abc_tiers(
    contributions: Mapping[uuid.UUID, Decimal], a_share: float = 0.80, b_share: float = 0.95
) -> dict[uuid.UUID, Tier]:
    """ABC by profit contribution, exactly as the handbook defines it.

    Sort by contribution descending, then customer id ascending. `before_i` is the summed
    positive contribution ranked before customer i, `total` the summed positive contribution
    of all. A if before_i / total < a_share, B if < b_share, else C; contribution <= 0 is C.
    Compared as `before_i < share * total` so no division rounds an edge the wrong way.
    """
    a, b = Decimal(str(a_share)), Decimal(str(b_share))
    ranked = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum((max(c, Decimal(0)) for _, c in ranked), Decimal(0))
    tiers: dict[uuid.UUID, Tier] = {}
    before = Decimal(0)
    for customer_id, contribution in ranked:
        if contribution <= 0:
            tiers[customer_id] = "C"
        elif before < a * total:
            tiers[customer_id] = "A"
        elif before < b * total:
            tiers[customer_id] = "B"
        else:
            tiers[customer_id] = "C"
        before += max(contribution, Decimal(0))
    return tiers


def rank_scores(values: Mapping[uuid.UUID, Decimal | int], higher_is_better: bool) -> dict:
    """Score 1-5 by rank: `floor(5 * (p - 1) / n) + 1`, exactly as the handbook defines it.

    Customers are ordered worst first (lowest value, or for recency with
    `higher_is_better=False` the most days since the last purchase); p is the 1-based
    position and n the number of customers. Tied values all take the position of the first
    of them, so ties share the lowest score their group reaches: with 8 of 10 customers at
    one purchase, all eight have p = 1 and score 1.
    """
    n = len(values)
    ordered = sorted(values.values(), reverse=not higher_is_better)
    first_position: dict[Decimal | int, int] = {}
    for position, value in enumerate(ordered, start=1):
        first_position.setdefault(value, position)
    return {
        customer_id: 5 * (first_position[value] - 1) // n + 1
        for customer_id, value in values.items()
    }


# Ordered: the first rule that matches names the segment.
RFM_SEGMENTS: list[tuple[str, str]] = [
    ("champions", "R >= 4, F >= 4 and M >= 4: bought recently, often and the most"),
    ("loyal_customers", "R >= 3 and F >= 4: buy often"),
    ("potential_loyalists", "R >= 4 and F >= 2: recent, repeat buyers"),
    ("new_customers", "R >= 4 and F = 1: bought recently for the first time in the window"),
    ("need_attention", "R = 3: average recency"),
    ("cant_lose_them", "R <= 2 and F >= 4: used to buy often, not lately"),
    ("at_risk", "R = 2: long since the last purchase"),
    ("lost", "R = 1: the longest since the last purchase"),
]


def rfm_segment(r: int, f: int, m: int) -> str:
    if r >= 4 and f >= 4 and m >= 4:
        return "champions"
    if r >= 3 and f >= 4:
        return "loyal_customers"
    if r >= 4 and f >= 2:
        return "potential_loyalists"
    if r >= 4:
        return "new_customers"
    if r == 3:
        return "need_attention"
    if f >= 4:
        return "cant_lose_them"
    if r == 2:
        return "at_risk"
    return "lost"
