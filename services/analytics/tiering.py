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


def quintile_scores(values: Mapping[uuid.UUID, Decimal | int], higher_is_better: bool) -> dict:
    """Score 1-5 by cumulative distribution: ceil(5 * share of customers at or below).

    Ties share a score. For recency (`higher_is_better=False`) "below" means more days since
    the last purchase, so the most recent buyers score 5.
    """
    n = len(values)
    scores: dict[uuid.UUID, int] = {}
    for customer_id, value in values.items():
        if higher_is_better:
            at_or_below = sum(1 for v in values.values() if v <= value)
        else:
            at_or_below = sum(1 for v in values.values() if v >= value)
        scores[customer_id] = (5 * at_or_below + n - 1) // n
    return scores


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
