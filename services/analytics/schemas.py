"""Response models of the analytics API (all read models; nothing here is written by clients)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from shared.contracts.analytics import LifecycleStage
from shared.contracts.common import CUSTOMER_ID_EXAMPLE, Money, Tier

GroupBy = Literal["none", "day", "week", "month", "tier", "industry", "region", "channel", "owner"]
ComplaintGroupBy = Literal[
    "none",
    "day",
    "week",
    "month",
    "category",
    "root_cause",
    "severity",
    "channel",
    "tier",
    "assignee",
    "team",
]
ChurnLevel = Literal["low", "medium", "high"]
Pct = Field(None, description="Percent, 0-100 (null when there is nothing to count).")


class Dimensions(BaseModel):
    """The customer's non-identifying attributes as profiles last published them."""

    kind: str | None = Field(None, examples=["organisation"])
    customer_number: str | None = Field(None, examples=["C-000123"])
    industry: str | None = Field(None, examples=["manufacturing"])
    region: str | None = Field(None, examples=["east"])
    company_size: str | None = Field(None, examples=["50-249"])
    source_channel: str | None = Field(None, examples=["referral"])
    owner_id: str | None = Field(None, description="The account manager (a user id).")
    status: str = Field("active", examples=["active"])


class RfmRead(BaseModel):
    """RFM: each measure scored 1-5 by rank among customers with a purchase (5 = best)."""

    recency_days: int = Field(description="Days since the last purchase.", examples=[12])
    frequency: int = Field(description="Purchases in the window.", examples=[6])
    monetary: Money = Field(description="Revenue in the window.")
    r: int = Field(ge=1, le=5, examples=[5])
    f: int = Field(ge=1, le=5, examples=[4])
    m: int = Field(ge=1, le=5, examples=[4])
    score: str = Field(description="R, F and M digits.", examples=["544"])
    segment: str = Field(examples=["champions"])


class ChurnRiskRead(BaseModel):
    """Churn risk 0-100 with the reasons that made it (low < 40 <= medium < 70 <= high)."""

    score: int = Field(ge=0, le=100, examples=[65])
    level: ChurnLevel = Field(examples=["medium"])
    reasons: list[str] = Field(examples=[["no purchase in 190 days: 2.1x the usual interval"]])


class PurchaseFacts(BaseModel):
    count_in_window: int = Field(description="Non-cancelled purchases in the window.")
    total: int = Field(description="Non-cancelled purchases ever.")
    first_at: datetime | None = None
    last_at: datetime | None = None


class InteractionFacts(BaseModel):
    total: int
    last_contact_at: datetime | None = None
    by_channel: dict[str, int] = Field(examples=[{"phone": 3, "email": 5}])


class CsatFigure(BaseModel):
    """CSAT of one question: share of answers >= 4 on the 1-5 scale."""

    count: int = Field(examples=[120])
    mean: float | None = Field(None, examples=[4.3])
    satisfied_pct: float | None = Field(None, examples=[91.7])


class SatisfactionFacts(BaseModel):
    surveys: int = Field(description="Surveys answered in the window.")
    csat: dict[str, CsatFigure] = Field(description="Per dimension, over the window.")
    last_nps: int | None = Field(None, ge=0, le=10)
    last_survey_at: datetime | None = None


class ComplaintFacts(BaseModel):
    total: int
    open: int
    sla_breaches_recent: int = Field(description="Complaints with an SLA breach, last 90 days.")


class LoyaltyLevelRead(BaseModel):
    """The membership level as the loyalty service last changed it."""

    code: str = Field(
        description="The level's code, as in loyalty's `GET /levels`.", examples=["gold"]
    )
    changed_at: datetime = Field(
        description="When loyalty changed the customer to this level (the event's time)."
    )


class CustomerInsights(BaseModel):
    """Everything analytics knows about one customer."""

    customer_id: uuid.UUID = Field(examples=[CUSTOMER_ID_EXAMPLE])
    profile_known: bool = Field(
        description="False while only other services' events mention the customer."
    )
    dimensions: Dimensions
    tier: Tier | None = Field(None, description="Null until the first re-rank after it appeared.")
    tier_rank: int | None = Field(
        None, description="1-based position in the ABC order (contribution desc, id asc)."
    )
    revenue: Money
    contribution: Money = Field(description="Profit contribution in the window.")
    window_days: int = Field(examples=[365])
    purchases: PurchaseFacts
    rfm: RfmRead | None = Field(None, description="Null for customers without a purchase.")
    lifecycle_stage: LifecycleStage | None = None
    churn_risk: ChurnRiskRead | None = None
    loyalty_level: LoyaltyLevelRead | None = Field(
        None,
        description="The loyalty membership level (`loyalty.level_changed`, latest wins); null "
        "until loyalty sets one.",
    )
    interactions: InteractionFacts
    satisfaction: SatisfactionFacts
    complaints: ComplaintFacts
    computed_at: datetime | None = Field(None, description="When the facts were last computed.")


class Thresholds(BaseModel):
    a_share: float = Field(examples=[0.8], description="A while before_i / total < a_share.")
    b_share: float = Field(examples=[0.95], description="B while before_i / total < b_share.")


class TierSummary(BaseModel):
    tier: Tier
    customers: int = Field(examples=[42])
    contribution: Money = Field(description="Summed contribution of the tier's customers.")
    share_of_contribution_pct: float | None = Field(
        None,
        description="The tier's positive contribution as % of all positive contribution.",
        examples=[80.4],
    )


class TierMember(BaseModel):
    rank: int = Field(description="1-based position in the ABC order.", examples=[1])
    customer_id: uuid.UUID
    tier: Tier | None
    contribution: Money
    revenue: Money
    customer_number: str | None = None


class TierMemberPage(BaseModel):
    items: list[TierMember]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class TierReport(BaseModel):
    """The ABC distribution, its thresholds and (a page of) the ranked members."""

    computed_at: datetime | None = Field(None, description="When the last re-rank ran.")
    window_days: int
    thresholds: Thresholds
    customers: int
    total_positive_contribution: Money
    tiers: list[TierSummary]
    members: TierMemberPage


class Target(BaseModel):
    target: float = Field(examples=[95.0])
    gap: float | None = Field(
        None,
        description="Actual minus target for CSAT, NPS and ratings; target minus actual for "
        "effort (lower effort is better). Negative = short of the target.",
        examples=[-3.3],
    )


class CsatWithTarget(CsatFigure):
    target_pct: float
    gap_pct: float | None = Field(None, description="satisfied_pct - target_pct.")


class NpsFigure(BaseModel):
    """NPS = % promoters (9-10) minus % detractors (0-6), -100..100."""

    count: int
    promoters_pct: float | None = None
    passives_pct: float | None = None
    detractors_pct: float | None = None
    score: float | None = Field(None, examples=[42.0])
    target: float
    gap: float | None = None


class EffortFigure(BaseModel):
    """Customer effort score 1-7 (lower is better)."""

    count: int
    mean: float | None = None
    target: float = Field(description="The mean effort to stay at or below.")
    gap: float | None = Field(None, description="target - mean; negative = too much effort.")


class RatingFigure(BaseModel):
    """Complaint-resolution ratings (1-5): share of ratings >= 4."""

    count: int
    mean: float | None = None
    satisfied_pct: float | None = None
    target_pct: float
    gap_pct: float | None = None


class SatisfactionGroup(BaseModel):
    key: str | None = Field(
        description="The group: a period start (YYYY-MM-DD), a tier, industry, ... "
        "null for `group_by=none` or customers without the attribute.",
        examples=["2026-11-01"],
    )
    csat: dict[str, CsatWithTarget] = Field(
        description="Per dimension (product_quality, service, price, delivery, after_sales, "
        "overall); dimensions without answers are left out."
    )
    nps: NpsFigure
    effort: EffortFigure
    complaint_resolution: RatingFigure


class SatisfactionReport(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    group_by: GroupBy
    groups: list[SatisfactionGroup]

    model_config = {"populate_by_name": True}


class DurationFigure(BaseModel):
    """Durations in seconds of SLA time (paused time excluded), over complaints that have one."""

    count: int
    p50_seconds: float | None = None
    p90_seconds: float | None = None
    sla_met_pct: float | None = Field(
        None, description="Met and never breached, as % of complaints with a decided target."
    )
    breached: int = Field(description="Complaints that breached this target.")


class ComplaintGroup(BaseModel):
    key: str | None = Field(examples=["2026-11-01"])
    received: int
    open: int
    resolved: int
    reopened: int = Field(description="Complaints reopened at least once.")
    reopen_rate_pct: float | None = Field(
        None, description="Reopened as % of complaints ever resolved."
    )
    sla_compliance_pct: float | None = Field(
        None,
        description="Targets met (first response and resolution together) as % of targets "
        "decided (met, missed or breached).",
    )
    first_response: DurationFigure
    resolution: DurationFigure
    by_category: dict[str, int]
    by_root_cause: dict[str, int]
    by_severity: dict[str, int]


class ComplaintStats(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    group_by: ComplaintGroupBy
    groups: list[ComplaintGroup]

    model_config = {"populate_by_name": True}


class ChurnRiskEntry(BaseModel):
    customer_id: uuid.UUID
    score: int = Field(ge=0, le=100)
    level: ChurnLevel
    reasons: list[str]
    lifecycle_stage: LifecycleStage | None = None
    tier: Tier | None = None
    contribution: Money
    last_purchase_at: datetime | None = None
    owner_id: str | None = None


class ChurnRiskPage(BaseModel):
    items: list[ChurnRiskEntry]
    next_cursor: str | None = None


class RfmSegmentSummary(BaseModel):
    segment: str = Field(examples=["champions"])
    description: str
    customers: int
    share_pct: float | None = Field(None, description="% of customers with an RFM score.")
    avg_recency_days: float | None = None
    avg_frequency: float | None = None
    avg_monetary: Decimal | None = None


class RfmSegments(BaseModel):
    computed_at: datetime | None = None
    customers_scored: int
    customers_without_purchase: int
    segments: list[RfmSegmentSummary]


class RerankRead(BaseModel):
    as_of: datetime
    tier_events: int = Field(description="customer.tier_changed events emitted.")
    lifecycle_events: int
    churn_events: int
    duration_ms: int


class RebuildResultRead(BaseModel):
    events: dict[str, int] = Field(
        description="Events read per source feed.", examples=[{"profiles": 1200}]
    )
    customers: int
    duration_ms: int
    rerank: RerankRead


class RebuildJob(BaseModel):
    """The state of this replica's latest rebuild."""

    status: Literal["running", "succeeded", "failed"]
    started_at: datetime
    finished_at: datetime | None = None
    result: RebuildResultRead | None = None
    error: str | None = Field(None, examples=["interactions feed unreachable: ..."])


# -- staff and management report ----------------------------------------------------------------


class Percentiles(BaseModel):
    count: int = Field(description="Complaints with this duration.")
    p50_seconds: float | None = None
    p90_seconds: float | None = None


class RatingSummary(BaseModel):
    count: int
    mean: float | None = None
    satisfied_pct: float | None = Field(None, description="Share rated 4 or 5, percent.")


class CsatSummary(BaseModel):
    count: int = Field(description="Survey answers (1-5, every dimension).")
    satisfied_pct: float | None = Field(None, description="Share of answers >= 4, percent.")


class StaffGroup(BaseModel):
    key: str | None = Field(
        description="The owner, assignee or team; null for records without one.",
        examples=["agent-7"],
    )
    followups_completed: int = 0
    followups_completed_on_time_pct: float | None = None
    followups_overdue_now: int = 0
    revisit_compliance_pct: float | None = None
    revisit_customers: int = Field(0, description="Customers the compliance is counted over.")
    interactions_logged: int = 0
    complaints_handled: int = 0
    first_response: Percentiles
    resolution: Percentiles
    sla_compliance_pct: float | None = None
    resolution_rating: RatingSummary
    customer_csat: CsatSummary


class StaffPerformance(BaseModel):
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    group_by: Literal["owner", "assignee", "team"]
    definitions: dict[str, str] = Field(description="How each figure is computed.")
    groups: list[StaffGroup]

    model_config = {"populate_by_name": True}


class TierMover(BaseModel):
    customer_id: uuid.UUID
    previous_tier: Tier | None
    tier: Tier
    steps: int = Field(description="Tiers moved, up or down (A→C and C→A are 2).")
    contribution: Money
    owner_id: str | None = None


class TierMovements(BaseModel):
    up: int = Field(description="Tier changes to a better tier in the period (C→B, B→A, C→A).")
    down: int = Field(description="Tier changes to a worse tier in the period.")
    new: int = Field(description="Customers tiered for the first time in the period.")
    biggest_movers: list[TierMover] = Field(
        description="Up to 10 customers with the largest move (then the highest contribution)."
    )


class DimensionTrend(BaseModel):
    dimension: str
    count: int
    satisfied_pct: float | None = None
    target_pct: float
    gap_pct: float | None = None
    previous_satisfied_pct: float | None = Field(None, description="The previous period.")
    trend_pct: float | None = Field(None, description="satisfied_pct - previous_satisfied_pct.")


class ComplaintsSummary(BaseModel):
    received: int
    open: int
    resolved: int
    sla_compliance_pct: float | None = None
    previous_received: int
    previous_sla_compliance_pct: float | None = None
    first_response_p50_seconds: float | None = None
    resolution_p50_seconds: float | None = None


class NewHighRisk(BaseModel):
    customer_id: uuid.UUID
    score: int
    owner_id: str | None = None
    reasons: list[str]


class ChurnChanges(BaseModel):
    new_high_risk_count: int = Field(
        description="Customers whose churn risk became high in the period."
    )
    new_high_risk: list[NewHighRisk] = Field(
        description="The 50 of them with the highest scores (then by id), with their owners "
        "and reasons; `new_high_risk_count` and `by_owner` count them all."
    )
    by_owner: dict[str, int] = Field(description="New high-risk customers per owner.")
    left_high_risk: int = Field(description="Customers whose risk dropped below high.")


class ManagementReport(BaseModel):
    period: Literal["week", "month"]
    from_: datetime = Field(alias="from", serialization_alias="from")
    to: datetime
    previous_from: datetime
    tier_movements: TierMovements
    satisfaction: list[DimensionTrend]
    nps: float | None = None
    nps_target: float
    complaints: ComplaintsSummary
    churn: ChurnChanges
    staff: list[StaffGroup] = Field(description="Staff figures by assignee for the period.")
    definitions: dict[str, str]

    model_config = {"populate_by_name": True}
