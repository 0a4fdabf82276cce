"""Request and response models of the interactions API."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.common import CUSTOMER_ID_EXAMPLE, Money, Tier, UtcDatetime
from shared.contracts.interactions import Channel, FollowupKind

Direction = Literal["inbound", "outbound"]
FollowupStatus = Literal["open", "done", "cancelled"]
PurchaseStatus = Literal["placed", "paid", "delivered", "cancelled"]
ContextType = Literal["interaction", "purchase", "complaint"]
SurveyChannel = Literal[
    "phone", "email", "video", "meeting", "visit", "chat", "sms", "social", "other", "web", "app"
]

CustomerId = Annotated[
    UUID, Field(description="The customer (an id from profiles).", examples=[CUSTOMER_ID_EXAMPLE])
]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=10_000)]
AgentId = Annotated[str, Field(min_length=1, max_length=200, examples=["agent-42"])]
PositiveMoney = Annotated[Money, Field(gt=0)]
NonNegativeMoney = Annotated[Money, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- interactions -------------------------------------------------------------------------------


class InteractionFields(Strict):
    contact_person: ShortText | None = Field(
        None, description="Who was spoken to at the customer (personal data).", examples=["Li Wei"]
    )
    duration_seconds: int | None = Field(None, ge=0, le=7 * 24 * 3600, examples=[420])
    subject: ShortText | None = Field(None, examples=["Quarterly review"])
    summary: LongText | None = Field(
        None, description="What was said and agreed (free text; erased with the customer)."
    )
    outcome: (
        Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z][a-z0-9_]*$")] | None
    ) = Field(
        None,
        description="A snake_case outcome, e.g. `resolved`, `follow_up_needed`, `no_answer`. "
        "`no_answer` does not count as a contact for the revisit plan.",
        examples=["follow_up_needed"],
    )
    agent_id: AgentId | None = Field(None, description="The user who had the contact.")
    need_id: UUID | None = Field(None, description="The customer need it was about (profiles).")
    purchase_id: UUID | None = Field(None, description="The purchase it was about.")
    complaint_id: UUID | None = Field(None, description="The complaint it was about.")


class InteractionCreate(InteractionFields):
    """A contact with a customer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": CUSTOMER_ID_EXAMPLE,
                    "channel": "phone",
                    "direction": "outbound",
                    "occurred_at": "2026-11-20T09:30:00Z",
                    "duration_seconds": 420,
                    "contact_person": "Li Wei",
                    "subject": "Quarterly review",
                    "summary": "Reviewed the order history; wants a quote for the new line.",
                    "outcome": "follow_up_needed",
                    "agent_id": "agent-42",
                }
            ]
        },
    )

    customer_id: CustomerId
    channel: Channel = Field(examples=["phone"])
    direction: Direction = Field(examples=["outbound"])
    occurred_at: UtcDatetime = Field(
        description="When the contact happened (with a time zone).",
        examples=["2026-11-20T09:30:00Z"],
    )


class InteractionUpdate(InteractionFields):
    """A correction: only the fields sent change (send `null` to clear an optional field)."""

    channel: Channel | None = None
    direction: Direction | None = None
    occurred_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _required_stay_set(self) -> InteractionUpdate:
        for name in ("channel", "direction", "occurred_at"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared")
        return self


class InteractionRead(Read):
    """A logged contact. Personal text reads `[redacted]` without the `pii:read` scope and
    is `null` once the customer was erased."""

    id: UUID
    customer_id: UUID = Field(description="The customer (the survivor, after a merge).")
    contact_person: str | None
    channel: Channel
    direction: Direction
    occurred_at: datetime
    duration_seconds: int | None
    subject: str | None
    summary: str | None
    outcome: str | None
    agent_id: str | None
    need_id: UUID | None
    purchase_id: UUID | None
    complaint_id: UUID | None
    version: int = Field(description="Bumped on every change; the ETag.")
    created_at: datetime
    updated_at: datetime


# -- follow-ups ---------------------------------------------------------------------------------


class FollowupCreate(Strict):
    """A task to contact the customer by a due time."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": CUSTOMER_ID_EXAMPLE,
                    "kind": "needs_check",
                    "due_at": "2026-11-30T09:00:00Z",
                    "assignee_id": "agent-42",
                    "note": "Send the quote and confirm the delivery date.",
                }
            ]
        },
    )

    customer_id: CustomerId
    kind: FollowupKind = Field(examples=["needs_check"])
    due_at: UtcDatetime = Field(examples=["2026-11-30T09:00:00Z"])
    assignee_id: AgentId | None = Field(None, description="The agent who should do it.")
    note: LongText | None = Field(None, description="What to do (free text).")


class FollowupUpdate(Strict):
    """Reschedule, reassign or re-describe an open follow-up."""

    due_at: UtcDatetime | None = None
    assignee_id: AgentId | None = None
    note: LongText | None = None

    @model_validator(mode="after")
    def _due_stays_set(self) -> FollowupUpdate:
        if "due_at" in self.model_fields_set and self.due_at is None:
            raise ValueError("due_at cannot be cleared")
        return self


RevisitOutcome = Literal["satisfied", "partially_satisfied", "not_satisfied", "unreachable"]


class FollowupComplete(Strict):
    interaction_id: UUID | None = Field(
        None, description="The interaction that did the follow-up (must exist)."
    )
    revisit_outcome: RevisitOutcome | None = Field(
        None,
        description="How the customer found the outcome: required for the revisit of a "
        "service-desk case (`case_id`), which records it on the case.",
        examples=["satisfied"],
    )


class FollowupRead(Read):
    """A planned contact and its state (`open`, `done` or `cancelled`)."""

    id: UUID
    customer_id: UUID
    kind: FollowupKind
    due_at: datetime
    assignee_id: str | None
    status: FollowupStatus
    note: str | None
    origin: Literal["manual", "cadence", "important_date", "case"] = Field(
        description="`manual`, or created by the service from the revisit cadence, an "
        "important date or a resolved service-desk case."
    )
    interaction_id: UUID | None
    case_id: UUID | None = Field(description="The service-desk case this revisit follows up.")
    revisit_outcome: RevisitOutcome | None
    completed_at: datetime | None
    overdue: bool = Field(description="Open and past its due time.")
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, f: Any, now: datetime) -> FollowupRead:
        """The follow-up as read at `now` (which decides `overdue`)."""
        fields = {name: getattr(f, name) for name in cls.model_fields if name != "overdue"}
        return cls(**fields, overdue=f.status == "open" and f.due_at < now)


class Agenda(BaseModel):
    """An agent's open follow-ups, grouped by when they are due."""

    assignee_id: str | None
    overdue: list[FollowupRead] = Field(description="Due before the start of today.")
    due_today: list[FollowupRead] = Field(description="Due today (in the requested time zone).")
    upcoming: list[FollowupRead] = Field(description="Due after today, within `days`.")


# -- cadence ------------------------------------------------------------------------------------


class CadenceUpdate(Strict):
    cadence_days: int | None = Field(
        description="Days between contacts for this customer; `null` follows the tier default.",
        ge=1,
        le=3650,
        examples=[21],
    )


class CadenceRead(BaseModel):
    customer_id: UUID
    tier: Tier | None = Field(description="The ABC tier from analytics, if known.")
    default_cadence_days: int = Field(description="The tier's default cadence (settings).")
    cadence_days_override: int | None
    effective_cadence_days: int
    last_contact_at: datetime | None
    next_revisit_at: datetime | None = Field(
        description="last contact + effective cadence; a revisit follow-up is created then."
    )

    @classmethod
    def of(cls, state: Any, default_cadence_days: int) -> CadenceRead:
        """The plan of a `customer_state` row, given its tier's default cadence."""
        return cls(
            customer_id=state.customer_id,
            tier=state.tier,
            default_cadence_days=default_cadence_days,
            cadence_days_override=state.cadence_days_override,
            effective_cadence_days=state.cadence_days_override or default_cadence_days,
            last_contact_at=state.last_contact_at,
            next_revisit_at=state.next_revisit_at,
        )


# -- purchases ----------------------------------------------------------------------------------


class PurchaseItem(Strict):
    sku: str = Field(min_length=1, max_length=100, examples=["SKU-123"])
    quantity: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=4, examples=["2"])]
    unit_price: NonNegativeMoney


class PurchaseCreate(Strict):
    """An order placed by the customer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": CUSTOMER_ID_EXAMPLE,
                    "external_ref": "SO-2026-000123",
                    "occurred_at": "2026-11-20T09:30:00Z",
                    "amount": "1250.00",
                    "cost": "900.00",
                    "currency": "CNY",
                    "status": "paid",
                    "items": [{"sku": "SKU-123", "quantity": "5", "unit_price": "250.00"}],
                }
            ]
        },
    )

    customer_id: CustomerId
    external_ref: str = Field(
        min_length=1,
        max_length=200,
        description="Your order number; unique per customer. Posting the same reference again "
        "returns the stored purchase (200) instead of creating a second one.",
        examples=["SO-2026-000123"],
    )
    occurred_at: UtcDatetime = Field(examples=["2026-11-20T09:30:00Z"])
    amount: NonNegativeMoney = Field(description="What the customer pays.")
    cost: NonNegativeMoney = Field(description="What it costs you; margin = amount - cost.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])
    status: Literal["placed", "paid", "delivered"] = "placed"
    items: list[PurchaseItem] = Field(default_factory=list, max_length=1000)


class PurchaseStatusUpdate(Strict):
    status: PurchaseStatus = Field(
        description="Forward only: placed → paid → delivered; cancelled from any state "
        "before refunds.",
        examples=["paid"],
    )


class RefundCreate(Strict):
    amount: PositiveMoney = Field(description="At most what remains refundable.")
    reason: LongText | None = None
    occurred_at: UtcDatetime | None = Field(None, description="Defaults to now.")


class RefundRead(Read):
    id: UUID
    purchase_id: UUID
    customer_id: UUID
    amount: Money
    margin: Money = Field(description="The refunded share of margin: amount x margin / amount.")
    reason: str | None
    occurred_at: datetime
    created_at: datetime
    reporting_currency: str | None = Field(
        None, description="The reporting currency (`KEHU_REPORTING_CURRENCY`)."
    )
    fx_rate: Decimal | None = Field(
        None,
        description="Reporting-currency units per unit of the purchase's currency on the "
        "refund's date (1 when they are the same currency).",
    )
    reporting_amount: Money | None = Field(None, description="amount x fx_rate.")
    reporting_margin: Money | None = Field(None, description="margin x fx_rate.")


class PurchaseItemRead(BaseModel):
    sku: str
    quantity: Decimal
    unit_price: Money


class PurchaseRead(Read):
    """A purchase; money is a decimal string with 4 places."""

    id: UUID
    customer_id: UUID
    external_ref: str
    occurred_at: datetime
    amount: Money
    cost: Money
    margin: Money
    currency: str
    status: PurchaseStatus
    items: list[PurchaseItemRead]
    refunded_amount: Money = Field(description="Sum of this purchase's refunds.")
    refunded_margin: Money = Field(description="Sum of the margin given back by refunds.")
    refundable_amount: Money = Field(description="amount - refunded_amount.")
    reporting_currency: str | None = Field(
        None,
        description="The reporting currency (`KEHU_REPORTING_CURRENCY`); null only for "
        "purchases recorded before conversion existed, in another currency.",
        examples=["CNY"],
    )
    fx_rate: Decimal | None = Field(
        None,
        description="Reporting-currency units per unit of `currency` on the purchase's date "
        "(UTC), from `GET /fx-rates`; 1 in the reporting currency.",
        examples=["7.1234"],
    )
    reporting_amount: Money | None = Field(None, description="amount x fx_rate, 4 places.")
    reporting_cost: Money | None = Field(None, description="cost x fx_rate, 4 places.")
    reporting_margin: Money | None = Field(None, description="reporting_amount - reporting_cost.")
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Any) -> PurchaseRead:
        derived = {"items", "refundable_amount"}
        fields = {name: getattr(p, name) for name in cls.model_fields if name not in derived}
        return cls(
            **fields,
            items=[PurchaseItemRead.model_validate(item) for item in p.items],
            refundable_amount=p.amount - p.refunded_amount,
        )


# -- surveys ------------------------------------------------------------------------------------

Score = Annotated[int, Field(ge=1, le=5)]


class SurveyScores(Strict):
    """Answers on a 1-5 scale (5 = very satisfied); answer at least one."""

    product_quality: Score | None = None
    service: Score | None = None
    price: Score | None = None
    delivery: Score | None = None
    after_sales: Score | None = None
    overall: Score | None = None


class SurveyCreate(Strict):
    """A customer's answers to a satisfaction survey."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": CUSTOMER_ID_EXAMPLE,
                    "context_type": "purchase",
                    "context_id": "0b6f3c1e-2a4d-4e5f-9a8b-7c6d5e4f3a2b",
                    "channel": "email",
                    "scores": {"product_quality": 5, "service": 4, "delivery": 3, "overall": 4},
                    "nps": 9,
                    "effort": 2,
                    "comment": "Good product, delivery was a day late.",
                }
            ]
        },
    )

    customer_id: CustomerId
    invitation_id: UUID | None = Field(None, description="The invitation answered, if any.")
    context_type: ContextType | None = None
    context_id: UUID | None = Field(None, description="The interaction, purchase or complaint.")
    channel: SurveyChannel | None = None
    scores: SurveyScores = Field(examples=[{"overall": 5, "service": 4}])
    nps: int | None = Field(None, ge=0, le=10, description="Would you recommend us? 0-10.")
    effort: int | None = Field(None, ge=1, le=7, description="Customer effort score, 1-7.")
    comment: LongText | None = None
    submitted_at: UtcDatetime | None = Field(None, description="Defaults to now.")

    @model_validator(mode="after")
    def _consistent(self) -> SurveyCreate:
        if (self.context_type is None) != (self.context_id is None):
            raise ValueError("context_type and context_id go together")
        if not self.scores.model_dump(exclude_none=True) and self.nps is None:
            raise ValueError("answer at least one score or the NPS question")
        return self


class SurveyRead(Read):
    """A survey response; `comment` needs `pii:read` and is `null` once the customer was erased."""

    id: UUID
    customer_id: UUID
    invitation_id: UUID | None
    context_type: ContextType | None
    context_id: UUID | None
    channel: SurveyChannel | None
    scores: dict[str, int] = Field(
        description="The answered dimensions, 1-5.", examples=[{"overall": 5, "service": 4}]
    )
    nps: int | None = Field(description="0-10; promoters 9-10, detractors 0-6.")
    effort: int | None
    comment: str | None
    submitted_at: datetime
    created_at: datetime


class InvitationCreate(Strict):
    """Ask to invite a customer to a survey; refused if they were asked recently."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": CUSTOMER_ID_EXAMPLE,
                    "context_type": "purchase",
                    "context_id": "0b6f3c1e-2a4d-4e5f-9a8b-7c6d5e4f3a2b",
                    "channel": "email",
                }
            ]
        },
    )

    customer_id: CustomerId
    context_type: ContextType | None = None
    context_id: UUID | None = None
    channel: SurveyChannel | None = Field(None, examples=["email"])


class InvitationRead(Read):
    id: UUID
    customer_id: UUID
    context_type: ContextType | None
    context_id: UUID | None
    channel: SurveyChannel | None
    sent_at: datetime
    survey_id: UUID | None = Field(description="The answer, once the customer responded.")


# -- timeline -----------------------------------------------------------------------------------

TimelineType = Literal[
    "interaction", "purchase", "refund", "survey", "followup", "case", "need", "consent"
]


class TimelineCase(BaseModel):
    """A service-desk case as the timeline shows it (details: the service desk, 8003)."""

    type: str = Field(examples=["service_request"])
    subtype: str | None = Field(None, examples=["repair"])
    reference: str = Field(examples=["SR-2026-000123"])
    status: str | None = Field(None, examples=["resolved"])
    outcome: str | None = Field(None, examples=["repaired"])
    severity: str | None = None
    channel: str | None = None
    revisit_outcome: str | None = None


class TimelineNeed(BaseModel):
    """A customer need as the timeline shows it (details: profiles, 8001)."""

    category: str = Field(examples=["product"])
    priority: str = Field(examples=["high"])
    status: str = Field(examples=["open"])
    due_date: date | None = None


class TimelineConsent(BaseModel):
    """A consent granted or withdrawn."""

    purpose: str = Field(examples=["marketing_email"])
    granted: bool
    source: str = Field(examples=["web_form"])


class TimelineEntry(BaseModel):
    """One item of the customer's history; exactly the field named by `type` is set."""

    type: TimelineType
    id: UUID
    at: datetime = Field(
        description="Its place in time: occurred_at, submitted_at, for follow-ups the "
        "completion time (else the due time), for cases their receipt, for needs their "
        "recording, for consents the change."
    )
    interaction: InteractionRead | None = None
    purchase: PurchaseRead | None = None
    refund: RefundRead | None = None
    survey: SurveyRead | None = None
    followup: FollowupRead | None = None
    case: TimelineCase | None = None
    need: TimelineNeed | None = None
    consent: TimelineConsent | None = None


# -- GDPR ---------------------------------------------------------------------------------------


class ImportantDate(BaseModel):
    kind: str = Field(examples=["birthday"])
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)


# -- exchange rates -----------------------------------------------------------------------------


class FxRateIn(Strict):
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["USD"])
    date: dt.date = Field(description="The day (UTC) the rate applies to.", examples=["2026-11-20"])
    rate: Decimal = Field(
        gt=0,
        max_digits=18,
        decimal_places=8,
        description="Reporting-currency units for one unit of `currency`.",
        examples=["7.1234"],
    )


class FxRatesPut(Strict):
    """Rates to set (each replaces the rate of its currency and day)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rates": [
                        {"currency": "USD", "date": "2026-11-20", "rate": "7.1234"},
                        {"currency": "EUR", "date": "2026-11-20", "rate": "7.7021"},
                    ]
                }
            ]
        },
    )

    rates: list[FxRateIn] = Field(min_length=1, max_length=5000)


class FxRateRead(Read):
    currency: str
    reporting_currency: str
    date: dt.date
    rate: Decimal
    updated_at: datetime
    updated_by: str | None

    @classmethod
    def of(cls, r: Any) -> FxRateRead:
        return cls(
            currency=r.currency,
            reporting_currency=r.reporting_currency,
            date=r.rate_date,
            rate=r.rate,
            updated_at=r.updated_at,
            updated_by=r.updated_by,
        )
