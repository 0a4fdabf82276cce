"""Events published by the profiles service on `kehu.customers`.

They carry no contact details or names (those stay in profiles, encrypted, and can be erased):
only identifiers and the non-identifying dimensions other services group by.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from shared.contracts import CUSTOMERS_TOPIC
from shared.contracts.common import CustomerEvent
from shared.events.registry import contract

CustomerKind = Literal["person", "organisation"]
ConsentPurpose = Literal[
    "marketing_email", "marketing_sms", "marketing_wechat", "phone_calls", "data_processing"
]
NeedStatus = Literal["open", "in_progress", "met", "dropped"]


class ImportantDate(BaseModel):
    """A recurring date worth a care contact (month and day only; no year, so not a birth date)."""

    kind: Literal["birthday", "founding_day", "anniversary", "other"]
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)


class CustomerDimensions(BaseModel):
    """The customer's non-identifying attributes, as analytics and reports group by them."""

    kind: CustomerKind
    customer_number: str = Field(examples=["C-000123"])
    industry: str | None = Field(None, examples=["manufacturing"])
    region: str | None = Field(None, examples=["east"])
    company_size: str | None = Field(None, examples=["50-249"])
    source_channel: str | None = Field(None, examples=["referral"])
    owner_id: str | None = Field(None, description="The account manager (a user id).")
    tags: list[str] = Field(default_factory=list)
    language: str | None = Field(None, examples=["zh-CN"])
    preferred_channel: str | None = Field(None, examples=["phone"])
    status: Literal["active", "archived"] = "active"
    important_dates: list[ImportantDate] = Field(default_factory=list)


class CustomerInsightValues(BaseModel):
    """The analytics insights a profile shows, after a change."""

    tier: Literal["A", "B", "C"] | None = None
    lifecycle_stage: (
        Literal["prospect", "first_purchase", "repeat", "loyal", "at_risk", "churned"] | None
    ) = None
    churn_risk_level: Literal["low", "medium", "high"] | None = None


@contract("customer.created", 1, CUSTOMERS_TOPIC, "A customer was added to the archive.")
class CustomerCreated(CustomerEvent):
    dimensions: CustomerDimensions


@contract(
    "customer.updated",
    1,
    CUSTOMERS_TOPIC,
    "A customer's profile changed; `changed_fields` names every changed field.",
)
class CustomerUpdated(CustomerEvent):
    changed_fields: list[str] = Field(
        examples=[["owner_id", "tags", "email"], ["tier", "churn_risk_level"]],
        description="Every changed field; `tier`, `lifecycle_stage` and `churn_risk_level` "
        "when analytics changed one of the customer's insights.",
    )
    dimensions: CustomerDimensions = Field(description="The dimensions after the change.")
    insights: CustomerInsightValues | None = Field(
        None,
        description="Set when an insight changed: the insights after the change (absent on "
        "profile edits; added in a compatible way, so older readers ignore it).",
    )


@contract("customer.archived", 1, CUSTOMERS_TOPIC, "A customer was archived (soft-deleted).")
class CustomerArchived(CustomerEvent):
    pass


@contract(
    "customer.merged",
    1,
    CUSTOMERS_TOPIC,
    "A duplicate was merged into a survivor; re-point records of `merged_customer_id`.",
)
class CustomerMerged(CustomerEvent):
    merged_customer_id: UUID = Field(
        description="The duplicate that no longer exists; `customer_id` is the survivor."
    )


@contract(
    "customer.erased",
    1,
    CUSTOMERS_TOPIC,
    "A customer's personal data was erased (GDPR); scrub PII, keep anonymous facts.",
)
class CustomerErased(CustomerEvent):
    pass


@contract("consent.changed", 1, CUSTOMERS_TOPIC, "A customer granted or withdrew a consent.")
class ConsentChanged(CustomerEvent):
    purpose: ConsentPurpose
    granted: bool
    source: str = Field(examples=["web_form"], description="Where the consent was given.")


class NeedFields(CustomerEvent):
    need_id: UUID
    category: str = Field(examples=["product"])
    priority: Literal["low", "medium", "high"]
    status: NeedStatus
    due_date: date | None = None


@contract("need.recorded", 1, CUSTOMERS_TOPIC, "A customer need or requirement was recorded.")
class NeedRecorded(NeedFields):
    pass


@contract("need.updated", 1, CUSTOMERS_TOPIC, "A customer need changed (status, priority...).")
class NeedUpdated(NeedFields):
    changed_fields: list[str]
