"""Events published by the interactions service on `kehu.interactions`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts import INTERACTIONS_TOPIC
from shared.contracts.common import CustomerEvent, Money
from shared.events.registry import contract

Channel = Literal["phone", "email", "video", "meeting", "visit", "chat", "sms", "social", "other"]
FollowupKind = Literal["revisit", "care", "renewal", "needs_check", "survey"]
SurveyDimension = Literal[
    "product_quality", "service", "price", "delivery", "after_sales", "overall"
]


@contract("interaction.logged", 1, INTERACTIONS_TOPIC, "A contact with a customer was recorded.")
class InteractionLogged(CustomerEvent):
    interaction_id: UUID
    channel: Channel
    direction: Literal["inbound", "outbound"]
    outcome: str | None = Field(None, examples=["follow_up_needed"])
    agent_id: str | None = None
    duration_seconds: int | None = Field(None, ge=0)


class FollowupFields(CustomerEvent):
    followup_id: UUID
    kind: FollowupKind
    due_at: datetime
    assignee_id: str | None = None
    case_id: UUID | None = Field(
        None, description="The service-desk case a revisit follows up (`case.resolved`)."
    )


@contract("followup.scheduled", 1, INTERACTIONS_TOPIC, "A follow-up task was scheduled.")
class FollowupScheduled(FollowupFields):
    pass


@contract(
    "followup.completed",
    1,
    INTERACTIONS_TOPIC,
    "A follow-up was done; `interaction_id` is the contact that did it.",
)
class FollowupCompleted(FollowupFields):
    interaction_id: UUID | None = None
    revisit_outcome: (
        Literal["satisfied", "partially_satisfied", "not_satisfied", "unreachable"] | None
    ) = Field(None, description="A case's revisit: how the customer found the outcome.")


@contract(
    "followup.overdue",
    1,
    INTERACTIONS_TOPIC,
    "A follow-up passed its due time undone (published once per follow-up).",
)
class FollowupOverdue(FollowupFields):
    pass


@contract(
    "followup.cancelled",
    1,
    INTERACTIONS_TOPIC,
    "A follow-up was cancelled: it is no longer due (nor overdue).",
)
class FollowupCancelled(FollowupFields):
    pass


@contract("purchase.recorded", 1, INTERACTIONS_TOPIC, "A purchase (order) was recorded.")
class PurchaseRecorded(CustomerEvent):
    purchase_id: UUID
    external_ref: str
    amount: Money
    cost: Money
    margin: Money = Field(description="amount - cost")
    currency: str = Field(min_length=3, max_length=3, examples=["USD"])
    status: Literal["placed", "paid", "delivered"]
    # Added compatibly (optional): the amounts converted when the purchase was recorded.
    reporting_currency: str | None = Field(
        None,
        min_length=3,
        max_length=3,
        description="The reporting currency the `reporting_*` amounts are in (null only for "
        "purchases recorded before conversion, in another currency).",
        examples=["CNY"],
    )
    fx_rate: Decimal | None = Field(
        None,
        gt=0,
        description="Reporting-currency units per unit of `currency` that day.",
        examples=["7.12340000"],
    )
    reporting_amount: Money | None = Field(None, description="amount x fx_rate")
    reporting_cost: Money | None = Field(None, description="cost x fx_rate")
    reporting_margin: Money | None = Field(None, description="reporting_amount - reporting_cost")


@contract(
    "purchase.refunded",
    1,
    INTERACTIONS_TOPIC,
    "Part or all of a purchase was refunded; `margin` is the margin given back.",
)
class PurchaseRefunded(CustomerEvent):
    purchase_id: UUID
    refund_id: UUID
    amount: Money
    margin: Money = Field(
        description="The refunded share of the purchase's margin: amount x (margin / amount)."
    )
    currency: str = Field(min_length=3, max_length=3)
    # Added compatibly (optional): converted at the rate of the refund's date.
    reporting_currency: str | None = Field(None, min_length=3, max_length=3, examples=["CNY"])
    fx_rate: Decimal | None = Field(None, gt=0, examples=["7.12340000"])
    reporting_amount: Money | None = Field(None, description="amount x fx_rate")
    reporting_margin: Money | None = Field(None, description="margin x fx_rate")


@contract(
    "purchase.cancelled",
    1,
    INTERACTIONS_TOPIC,
    "A purchase was cancelled: it no longer counts toward revenue or contribution.",
)
class PurchaseCancelled(CustomerEvent):
    purchase_id: UUID


@contract("survey.submitted", 1, INTERACTIONS_TOPIC, "A satisfaction survey was answered.")
class SurveySubmitted(CustomerEvent):
    survey_id: UUID
    context_type: Literal["interaction", "purchase", "complaint"] | None = None
    context_id: UUID | None = None
    channel: Channel | Literal["web", "app"] | None = None
    scores: dict[SurveyDimension, int] = Field(
        description="Answers 1-5 per dimension.", examples=[{"overall": 5, "service": 4}]
    )
    nps: int | None = Field(None, ge=0, le=10)
    effort: int | None = Field(None, ge=1, le=7, description="Customer effort score 1-7.")


@contract(
    "survey.invited",
    1,
    INTERACTIONS_TOPIC,
    "A customer was invited to a satisfaction survey (the outreach service sends the invitation).",
)
class SurveyInvited(CustomerEvent):
    invitation_id: UUID
    context_type: Literal["interaction", "purchase", "complaint"] | None = None
    context_id: UUID | None = None
    channel: str | None = Field(
        None, examples=["email"], description="The channel asked for, if any (else preferred)."
    )
