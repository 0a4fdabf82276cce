"""Settings of the loyalty service, from the environment (`LOYALTY_*` for its own)."""

from decimal import Decimal

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    """Points, windows and jobs of the loyalty programme; every value has a working default."""

    service_name: str = "loyalty"
    service_database_url: str | None = Field(None, validation_alias="LOYALTY_DATABASE_URL")

    # Earning: floor(amount x points_per_unit x the member level's multiplier), only for
    # purchases in `currency` (others are skipped, logged and counted).
    currency: str = Field("CNY", min_length=3, max_length=3, validation_alias="LOYALTY_CURRENCY")
    points_per_unit: Decimal = Field(Decimal("1"), ge=0, validation_alias="LOYALTY_POINTS_PER_UNIT")
    # Earned points stay pending through the return window, then become spendable.
    return_window_days: int = Field(7, ge=0, validation_alias="LOYALTY_RETURN_WINDOW_DAYS")
    # A lot expires at the end of the month `expiry_months` after the month it was earned in.
    expiry_months: int = Field(12, ge=1, validation_alias="LOYALTY_EXPIRY_MONTHS")
    # `loyalty.points_expiring` is published this many days before a lot expires.
    expiring_notice_days: int = Field(30, ge=0, validation_alias="LOYALTY_EXPIRING_NOTICE_DAYS")
    # A reversal larger than the member's lots: owe the rest (balance below zero) or write it off.
    negative_balance_allowed: bool = Field(True, validation_alias="LOYALTY_NEGATIVE_BALANCE")
    # Levels are decided by the points earned in this trailing window.
    level_window_days: int = Field(365, ge=1, validation_alias="LOYALTY_LEVEL_WINDOW_DAYS")
    # Birthday bonus: points, and the date must have been known this many days before.
    birthday_bonus_points: int = Field(100, ge=0, validation_alias="LOYALTY_BIRTHDAY_BONUS")
    birthday_min_known_days: int = Field(
        30, ge=0, validation_alias="LOYALTY_BIRTHDAY_MIN_KNOWN_DAYS"
    )
    # A job run that missed a birthday (replicas down) still awards it this many days later.
    birthday_grace_days: int = Field(3, ge=0, validation_alias="LOYALTY_BIRTHDAY_GRACE_DAYS")
    # What a point is worth in `currency`, for the liability report.
    point_value: Decimal = Field(Decimal("0.01"), ge=0, validation_alias="LOYALTY_POINT_VALUE")

    jobs_enabled: bool = Field(True, validation_alias="LOYALTY_JOBS")
    job_interval_s: float = Field(3600.0, gt=0, validation_alias="LOYALTY_JOB_INTERVAL_S")
    job_batch: int = Field(500, ge=1, validation_alias="LOYALTY_JOB_BATCH")
    consumers_enabled: bool = Field(True, validation_alias="LOYALTY_CONSUMERS")
