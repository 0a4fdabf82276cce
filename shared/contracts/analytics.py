"""Events published by the analytics service on `kehu.analytics` (only on an actual change)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts import ANALYTICS_TOPIC
from shared.contracts.common import CustomerEvent, Money, Tier
from shared.events.registry import contract

LifecycleStage = Literal["prospect", "first_purchase", "repeat", "loyal", "at_risk", "churned"]


@contract(
    "customer.tier_changed",
    1,
    ANALYTICS_TOPIC,
    "A customer's ABC tier changed (by profit contribution, trailing 365 days).",
)
class CustomerTierChanged(CustomerEvent):
    tier: Tier
    previous_tier: Tier | None
    contribution: Money


@contract("customer.lifecycle_changed", 1, ANALYTICS_TOPIC, "A customer's lifecycle stage changed.")
class CustomerLifecycleChanged(CustomerEvent):
    stage: LifecycleStage
    previous_stage: LifecycleStage | None


@contract(
    "customer.churn_risk_changed", 1, ANALYTICS_TOPIC, "A customer's churn-risk score changed."
)
class CustomerChurnRiskChanged(CustomerEvent):
    score: int = Field(ge=0, le=100)
    previous_score: int | None = Field(None, ge=0, le=100)
    level: Literal["low", "medium", "high"]
    reasons: list[str] = Field(examples=[["no purchase in 2.5x the usual interval"]])
