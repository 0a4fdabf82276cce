"""Events published by the loyalty service on `kehu.loyalty`.

Points are whole numbers. A member's balance is `available` (spendable now) plus `pending`
(earned, inside the return window) minus `debt` (owed after a reversal larger than its lots).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts import LOYALTY_TOPIC
from shared.contracts.common import CustomerEvent
from shared.events.registry import contract

EarnSource = Literal["purchase", "birthday", "adjustment"]


@contract(
    "loyalty.points_earned",
    1,
    LOYALTY_TOPIC,
    "A member earned points (a purchase, a birthday bonus or a positive adjustment).",
)
class PointsEarned(CustomerEvent):
    points: int = Field(ge=0, examples=[1250])
    source: EarnSource
    source_id: str = Field(description="The purchase id, or the bonus / adjustment reference.")
    level: str | None = Field(
        None, description="The member's level when earned.", examples=["silver"]
    )
    available_at: datetime = Field(description="Pending until then (the return window).")
    expires_at: datetime


@contract(
    "loyalty.points_reversed",
    1,
    LOYALTY_TOPIC,
    "Points of a refunded or cancelled purchase were taken back.",
)
class PointsReversed(CustomerEvent):
    purchase_id: UUID
    reason: Literal["refund", "cancellation"]
    points: int = Field(ge=0, description="Points taken back, including any now owed.")
    uncovered: int = Field(
        0, ge=0, description="Points the member's lots could not cover (owed or written off)."
    )
    negative: bool = Field(False, description="The reversal left the balance below zero.")


@contract("loyalty.points_redeemed", 1, LOYALTY_TOPIC, "A member spent points on a redemption.")
class PointsRedeemed(CustomerEvent):
    redemption_id: UUID
    points: int = Field(gt=0)
    reward_code: str | None = Field(None, examples=["COFFEE-10"])


@contract(
    "loyalty.redemption_cancelled",
    1,
    LOYALTY_TOPIC,
    "A redemption was cancelled; its points went back to the lots they came from.",
)
class RedemptionCancelled(CustomerEvent):
    redemption_id: UUID
    points: int = Field(gt=0)


@contract("loyalty.points_expired", 1, LOYALTY_TOPIC, "A member's unspent points expired.")
class PointsExpired(CustomerEvent):
    points: int = Field(gt=0)


@contract(
    "loyalty.points_expiring",
    1,
    LOYALTY_TOPIC,
    "Some of a member's points expire soon (published once per lot, ahead of expiry).",
)
class PointsExpiring(CustomerEvent):
    points: int = Field(gt=0)
    expires_at: datetime


@contract(
    "loyalty.level_changed",
    1,
    LOYALTY_TOPIC,
    "A member's level changed: up at once when earned points cross a threshold, down by one "
    "level at most at the monthly evaluation.",
)
class LevelChanged(CustomerEvent):
    level: str = Field(
        description="The new level's code (as in loyalty's `GET /levels`).", examples=["gold"]
    )
    previous_level: str | None = Field(
        None,
        description="The level's code before (null if the member had none).",
        examples=["silver"],
    )
    direction: Literal["up", "down"]
    earned_in_window: int = Field(ge=0, description="Points earned in the trailing window.")
