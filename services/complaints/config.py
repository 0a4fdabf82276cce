from typing import Literal

from pydantic import BaseModel, Field, field_validator

from shared.settings import ServiceSettings

SEVERITIES = ("low", "medium", "high", "critical")
TIERS = ("A", "B", "C")


class SlaTargets(BaseModel):
    """Targets of one severity × tier cell, in SLA seconds (business seconds with the calendar)."""

    first_response_s: int = Field(gt=0, description="Receipt to first response (acknowledgement).")
    resolution_s: int = Field(gt=0, description="Receipt to resolution.")


def _h(hours: float) -> int:
    return int(hours * 3600)


# A-tier customers get the tightest targets; critical complaints the tightest of all.
DEFAULT_SLA_MATRIX: dict[str, dict[str, SlaTargets]] = {
    "critical": {
        "A": SlaTargets(first_response_s=_h(1), resolution_s=_h(24)),
        "B": SlaTargets(first_response_s=_h(2), resolution_s=_h(48)),
        "C": SlaTargets(first_response_s=_h(4), resolution_s=_h(72)),
    },
    "high": {
        "A": SlaTargets(first_response_s=_h(4), resolution_s=_h(48)),
        "B": SlaTargets(first_response_s=_h(8), resolution_s=_h(72)),
        "C": SlaTargets(first_response_s=_h(24), resolution_s=_h(120)),
    },
    "medium": {
        "A": SlaTargets(first_response_s=_h(24), resolution_s=_h(120)),
        "B": SlaTargets(first_response_s=_h(48), resolution_s=_h(168)),
        "C": SlaTargets(first_response_s=_h(48), resolution_s=_h(240)),
    },
    "low": {
        "A": SlaTargets(first_response_s=_h(48), resolution_s=_h(240)),
        "B": SlaTargets(first_response_s=_h(72), resolution_s=_h(336)),
        "C": SlaTargets(first_response_s=_h(120), resolution_s=_h(480)),
    },
}


class Settings(ServiceSettings):
    """Settings of the complaints service (the service desk), from the environment
    (`COMPLAINTS_*` for its own).

    `COMPLAINTS_SLA_MATRIX` (the default SLA policies, after those set with `PUT /sla-policies`)
    is JSON: `{"<severity>": {"<tier>": {"first_response_s": ..,
    "resolution_s": ..}}}` with every severity (low, medium, high, critical) and tier (A, B, C).
    """

    service_name: str = "complaints"
    service_database_url: str | None = Field(None, validation_alias="COMPLAINTS_DATABASE_URL")

    sla_matrix: dict[str, dict[str, SlaTargets]] = Field(
        default_factory=lambda: DEFAULT_SLA_MATRIX, validation_alias="COMPLAINTS_SLA_MATRIX"
    )
    sla_warning_ratio: float = Field(0.8, gt=0, lt=1, validation_alias="COMPLAINTS_SLA_WARNING")
    default_tier: Literal["A", "B", "C"] = Field("C", validation_alias="COMPLAINTS_DEFAULT_TIER")

    # Optional business-hours calendar: when on, SLA clocks run only inside business hours.
    business_hours_enabled: bool = Field(False, validation_alias="COMPLAINTS_BUSINESS_HOURS")
    business_timezone: str = Field("UTC", validation_alias="COMPLAINTS_BUSINESS_TIMEZONE")
    business_day_start_hour: int = Field(9, ge=0, le=23, validation_alias="COMPLAINTS_DAY_START")
    business_day_end_hour: int = Field(17, ge=1, le=24, validation_alias="COMPLAINTS_DAY_END")
    business_weekdays: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        validation_alias="COMPLAINTS_BUSINESS_WEEKDAYS",
        description="ISO weekday numbers minus one: 0 = Monday ... 6 = Sunday.",
    )

    reopen_window_days: float = Field(30, ge=0, validation_alias="COMPLAINTS_REOPEN_WINDOW_DAYS")
    revisit_after_days: float = Field(7, ge=0, validation_alias="COMPLAINTS_REVISIT_AFTER_DAYS")
    revisit_types: list[str] = Field(
        default_factory=lambda: ["complaint", "service_request", "technical_support", "claim"],
        validation_alias="COMPLAINTS_REVISIT_TYPES",
        description="Case types whose outcome is followed by a revisit (and closed with one).",
    )
    return_window_days: float = Field(
        7,
        ge=0,
        validation_alias="COMPLAINTS_RETURN_WINDOW_DAYS",
        description="Claims (returns, exchanges) are accepted this long after delivery.",
    )

    sla_scheduler_enabled: bool = Field(True, validation_alias="COMPLAINTS_SLA_SCHEDULER")
    sla_scheduler_interval_s: float = Field(5.0, gt=0, validation_alias="COMPLAINTS_SLA_INTERVAL_S")
    sla_scheduler_batch: int = Field(200, ge=1, validation_alias="COMPLAINTS_SLA_BATCH")
    consumers_enabled: bool = Field(True, validation_alias="COMPLAINTS_CONSUMERS")

    @field_validator("sla_matrix")
    @classmethod
    def _complete_matrix(
        cls, matrix: dict[str, dict[str, SlaTargets]]
    ) -> dict[str, dict[str, SlaTargets]]:
        missing = [
            f"{severity}/{tier}"
            for severity in SEVERITIES
            for tier in TIERS
            if tier not in matrix.get(severity, {})
        ]
        if missing:
            raise ValueError(f"sla_matrix lacks targets for {', '.join(missing)}")
        return matrix

    def targets(self, severity: str, tier: str) -> SlaTargets:
        return self.sla_matrix[severity][tier]
