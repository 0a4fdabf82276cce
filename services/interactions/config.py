from pydantic import AliasChoices, Field

from shared.settings import ServiceSettings


def _env(name: str) -> AliasChoices:
    """Read `INTERACTIONS_<NAME>` from the environment; the field name also works in code."""
    return AliasChoices(name, f"INTERACTIONS_{name.upper()}")


class Settings(ServiceSettings):
    """Settings of the interactions service, from the environment (`INTERACTIONS_*` for its own)."""

    service_name: str = "interactions"
    service_database_url: str | None = Field(None, validation_alias="INTERACTIONS_DATABASE_URL")

    # Revisit cadence: days between contacts by ABC tier (a per-customer override wins).
    cadence_a_days: int = Field(14, ge=1, validation_alias=_env("cadence_a_days"))
    cadence_b_days: int = Field(30, ge=1, validation_alias=_env("cadence_b_days"))
    cadence_c_days: int = Field(90, ge=1, validation_alias=_env("cadence_c_days"))
    # Customers analytics has not tiered yet are planned like this tier.
    cadence_untiered_as: str = Field(
        "C", pattern="^[ABC]$", validation_alias=_env("cadence_untiered_as")
    )
    # Care follow-ups are created this many days before an important date.
    care_lead_days: int = Field(7, ge=0, validation_alias=_env("care_lead_days"))
    # No customer is invited to a survey more than once per this many days.
    survey_suppression_days: int = Field(30, ge=0, validation_alias=_env("survey_suppression_days"))

    # Schedulers (every replica runs them; rows are claimed with SKIP LOCKED).
    overdue_interval_s: float = Field(30.0, gt=0, validation_alias=_env("overdue_interval_s"))
    revisit_interval_s: float = Field(60.0, gt=0, validation_alias=_env("revisit_interval_s"))
    scheduler_batch_size: int = Field(200, ge=1, validation_alias=_env("scheduler_batch_size"))
    schedulers_enabled: bool = Field(True, validation_alias=_env("schedulers_enabled"))

    def cadence_days(self, tier: str | None) -> int:
        tier = tier or self.cadence_untiered_as
        return {"A": self.cadence_a_days, "B": self.cadence_b_days}.get(tier, self.cadence_c_days)
