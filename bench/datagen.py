"""Seeded, reproducible synthetic customers and their activity.

Spend is heavy-tailed (Pareto, alpha ~1.16: the classic 80/20) so the ABC tiers mean something;
interactions spread over channels; surveys lean satisfied with a realistic tail; complaint
severities and categories follow plausible weights. Generation is streaming, so it scales to a
million customers in constant memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

INDUSTRIES = [
    "manufacturing",
    "retail",
    "software",
    "logistics",
    "healthcare",
    "education",
    "finance",
    "hospitality",
]
REGIONS = ["north", "south", "east", "west", "central"]
SIZES = ["1-9", "10-49", "50-249", "250-999", "1000+"]
SOURCES = ["referral", "web", "trade_show", "cold_call", "partner"]
CHANNELS = ["phone", "email", "video", "meeting", "visit", "chat", "sms"]
CHANNEL_WEIGHTS = [30, 30, 8, 10, 5, 12, 5]
COMPLAINT_CATEGORIES = [
    "product_quality",
    "service",
    "delivery",
    "billing",
    "information",
    "expectation",
    "other",
]
CATEGORY_WEIGHTS = [30, 20, 20, 12, 6, 8, 4]
SEVERITIES = ["low", "medium", "high", "critical"]
SEVERITY_WEIGHTS = [45, 35, 16, 4]
DIMENSIONS = ["product_quality", "service", "price", "delivery", "after_sales", "overall"]
FIRST = ["Wei", "Fang", "Lei", "Min", "Jing", "Tao", "Li", "Hua", "Ana", "Ben", "Chloe", "Dev"]
LAST = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Smith", "Garcia"]
COMPANY = ["Trading", "Tech", "Foods", "Logistics", "Machinery", "Textiles", "Health", "Labs"]


@dataclass
class Customer:
    external_ref: str
    body: dict[str, Any]
    purchases: list[dict[str, Any]] = field(default_factory=list)
    interactions: list[dict[str, Any]] = field(default_factory=list)
    surveys: list[dict[str, Any]] = field(default_factory=list)
    complaints: list[dict[str, Any]] = field(default_factory=list)


def _money(value: float) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def customers(count: int, seed: int = 7, now: datetime | None = None) -> Iterator[Customer]:
    """`count` customers with purchases, interactions, surveys and complaints (customer_id unset:
    the loader fills it in once profiles has assigned one)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    for i in range(count):
        organisation = rng.random() < 0.6
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{last} {rng.choice(COMPANY)} {i}" if organisation else f"{first} {last} {i}"
        ref = f"gen-{seed}-{i}"
        body = {
            "kind": "organisation" if organisation else "person",
            "display_name": name,
            "email": f"{first.lower()}.{last.lower()}.{seed}.{i}@example.com",
            "phone": f"+8613{rng.randrange(10**8, 10**9)}",
            "industry": rng.choice(INDUSTRIES),
            "region": rng.choice(REGIONS),
            "company_size": rng.choice(SIZES) if organisation else None,
            "source_channel": rng.choice(SOURCES),
            "owner_id": f"agent-{rng.randrange(1, 9)}",
            "tags": rng.sample(
                ["vip", "wholesale", "online", "key_account", "new"], k=rng.randrange(0, 3)
            ),
            "language": rng.choice(["zh-CN", "en"]),
            "external_ref": ref,
        }
        customer = Customer(ref, {k: v for k, v in body.items() if v is not None})
        # Heavy-tailed yearly spend; a fifth of customers are prospects with no purchase.
        if rng.random() > 0.2:
            yearly = min(rng.paretovariate(1.16) * 800, 2_000_000)
            orders = max(1, min(60, int(rng.expovariate(1 / 5)) + 1))
            for n in range(orders):
                amount = yearly / orders * rng.uniform(0.6, 1.4)
                margin_rate = rng.uniform(-0.05, 0.45)
                customer.purchases.append(
                    {
                        "external_ref": f"{ref}-o{n}",
                        "occurred_at": (now - timedelta(days=rng.uniform(0, 360))).isoformat(),
                        "amount": _money(amount),
                        "cost": _money(amount * (1 - margin_rate)),
                        "currency": "CNY",
                        "status": rng.choice(["paid", "delivered", "delivered"]),
                    }
                )
        for _ in range(rng.randrange(0, 6)):
            customer.interactions.append(
                {
                    "channel": rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0],
                    "direction": rng.choice(["inbound", "outbound"]),
                    "occurred_at": (now - timedelta(days=rng.uniform(0, 200))).isoformat(),
                    "duration_seconds": rng.randrange(60, 3600),
                    "subject": "Check-in",
                    "outcome": rng.choice(["resolved", "follow_up_needed", "no_answer"]),
                }
            )
        if customer.purchases and rng.random() < 0.5:
            mood = rng.choices([5, 4, 3, 2, 1], [45, 30, 13, 8, 4])[0]
            customer.surveys.append(
                {
                    "scores": {
                        d: max(1, min(5, mood + rng.choice([-1, 0, 0, 1]))) for d in DIMENSIONS
                    },
                    "nps": max(0, min(10, mood * 2 + rng.choice([-1, 0, 0, 1]))),
                    "channel": "email",
                }
            )
        if rng.random() < 0.08:
            customer.complaints.append(
                {
                    "channel": rng.choice(["phone", "email", "web_form"]),
                    "subject": "Order issue",
                    "description": "Generated complaint for the demo data set.",
                    "category": rng.choices(COMPLAINT_CATEGORIES, CATEGORY_WEIGHTS)[0],
                    "severity": rng.choices(SEVERITIES, SEVERITY_WEIGHTS)[0],
                }
            )
        yield customer
