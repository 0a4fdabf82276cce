"""Request and response models of the loyalty API, with examples."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CUSTOMER = "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e"
EntryKind = Literal["earn", "reverse", "redeem", "restore", "expire", "adjust", "bonus"]
Code = str


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberCreate(Strict):
    customer_id: uuid.UUID = Field(examples=[CUSTOMER])


class AdjustmentCreate(Strict):
    points: int = Field(
        ge=-100_000_000,
        le=100_000_000,
        description="Signed: + credits a lot spendable at once; - takes available points.",
        examples=[200],
    )
    reason: Literal["goodwill", "correction", "migration", "other"]
    reference: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="Your ticket or batch id (no free text: the ledger keeps no personal data).",
        examples=["TICKET-4711"],
    )

    @model_validator(mode="after")
    def _not_zero(self) -> AdjustmentCreate:
        if self.points == 0:
            raise ValueError("points must not be 0")
        return self


class BalanceRead(BaseModel):
    available: int = Field(description="Spendable now (past the return window).", examples=[1200])
    pending: int = Field(description="Earned, still inside the return window.", examples=[300])
    debt: int = Field(description="Owed after reversals larger than the lots.", examples=[0])
    spendable: int = Field(description="available - debt: what a redemption may use.")


class MemberRead(BaseModel):
    customer_id: uuid.UUID = Field(examples=[CUSTOMER])
    level: str | None = Field(examples=["silver"])
    level_changed_at: datetime | None
    earned_in_window: int = Field(
        description="Points earned by purchases in the trailing level window, net of reversals."
    )
    balance: BalanceRead
    tier: str | None = Field(None, description="The ABC tier from analytics.", examples=["A"])
    birthday: str | None = Field(
        None,
        description="MM-DD from the profile; personal data (needs `pii:read`).",
        examples=["05-17"],
    )
    enrolled_via: str = Field(examples=["purchase"])
    created_at: datetime
    erased_at: datetime | None = None


class EntryRead(BaseModel):
    id: int
    at: datetime
    kind: EntryKind
    points: int = Field(description="Signed: + earned or given back, - taken.", examples=[-500])
    reason: str = Field(examples=["refund"])
    source_id: str | None = Field(None, description="The purchase, refund, redemption... id.")
    lot_id: int | None = None
    redemption_id: uuid.UUID | None = None
    uncovered: int = Field(
        0, description="Points a reversal found no lots for (owed if `negative`, else written off)."
    )
    negative: bool = Field(False, description="This entry took the balance below zero.")
    details: dict[str, object] = Field(default_factory=dict)


class LotRead(BaseModel):
    id: int
    source: str = Field(examples=["purchase"])
    source_id: str
    points: int
    remaining: int
    earned_at: datetime
    available_at: datetime = Field(description="Pending until then.")
    expires_at: datetime
    status: Literal["pending", "available"]


class Ledger(BaseModel):
    """A member's ledger page with the balance it explains."""

    customer_id: uuid.UUID
    items: list[EntryRead]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")
    entries_total: int = Field(
        description="The sum of every entry: equals available + pending - debt once due "
        "expiries have run."
    )
    balance: BalanceRead
    lots: list[LotRead] = Field(description="The open lots, soonest-expiring first.")


class LevelIn(Strict):
    code: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$", examples=["gold"])
    name: str = Field(min_length=1, max_length=100, examples=["Gold"])
    threshold: int = Field(
        ge=0, description="Points earned in the trailing window to qualify.", examples=[10000]
    )
    multiplier: Decimal = Field(
        gt=0,
        le=100,
        max_digits=6,
        decimal_places=3,
        examples=["1.5"],
        description="Earned points are multiplied by it.",
    )


class LevelRead(LevelIn):
    model_config = ConfigDict(extra="ignore")


class LevelsPut(Strict):
    levels: list[LevelIn] = Field(
        min_length=1,
        max_length=20,
        description="The whole set, replacing the previous one; one level must have threshold 0.",
    )


class RewardPut(Strict):
    name: str = Field(min_length=1, max_length=200, examples=["10 CNY coffee coupon"])
    kind: Literal["coupon", "item"] = Field(
        description="`coupon`: a redemption issues a unique single-use code."
    )
    points_cost: int = Field(gt=0, examples=[500])
    stock: int | None = Field(None, ge=0, description="None: unlimited.", examples=[100])
    per_customer_limit: int | None = Field(None, ge=1, examples=[2])
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    coupon_valid_days: int | None = Field(
        None, ge=1, description="A coupon's validity after issue (None: no end).", examples=[30]
    )
    active: bool = True

    @model_validator(mode="after")
    def _window(self) -> RewardPut:
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class RewardRead(RewardPut):
    model_config = ConfigDict(extra="ignore")
    code: str = Field(examples=["COFFEE-10"])
    version: int
    updated_at: datetime


class RedemptionCreate(Strict):
    customer_id: uuid.UUID = Field(examples=[CUSTOMER])
    reward_code: str | None = Field(None, max_length=60, examples=["COFFEE-10"])
    points: int | None = Field(
        None, gt=0, le=100_000_000, description="Points to spend without a reward."
    )

    @model_validator(mode="after")
    def _one_of(self) -> RedemptionCreate:
        if (self.reward_code is None) == (self.points is None):
            raise ValueError("give exactly one of reward_code and points")
        return self


class CouponRead(BaseModel):
    code: str = Field(examples=["LY-7K2Q9XWM4R"])
    customer_id: uuid.UUID
    reward_code: str
    redemption_id: uuid.UUID
    status: Literal["issued", "used", "void"]
    issued_at: datetime
    valid_until: datetime | None
    used_at: datetime | None


class RedemptionRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    reward_code: str | None
    points: int
    status: Literal["completed", "cancelled"]
    coupon: CouponRead | None = None
    created_at: datetime
    cancelled_at: datetime | None


class ExpiringMonth(BaseModel):
    month: str = Field(examples=["2027-03"], description="Open points expiring at its end.")
    points: int
    value: Decimal


class LiabilityReport(BaseModel):
    """The programme's outstanding points and what they are worth."""

    as_of: datetime
    currency: str = Field(examples=["CNY"])
    point_value: Decimal = Field(examples=["0.01"])
    available: int
    pending: int
    debt: int = Field(description="Points members owe (negative balances).")
    outstanding: int = Field(description="available + pending - debt.")
    value: Decimal = Field(description="outstanding x point_value.")
    expiring_by_month: list[ExpiringMonth]
