"""Request and response models of the profiles API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.contracts.analytics import LifecycleStage
from shared.contracts.common import CUSTOMER_ID_EXAMPLE, Tier, UtcDatetime
from shared.contracts.customers import ConsentPurpose, CustomerKind, ImportantDate, NeedStatus
from shared.gdpr import GdprDocument

# Numbers written without a +country code are read as numbers of this region.
DEFAULT_PHONE_REGION = "CN"
Channel = Literal["email", "phone", "sms", "wechat", "visit", "mail", "video"]
Priority = Literal["low", "medium", "high"]
CustomerStatus = Literal["active", "archived", "merged"]
# Default of update fields that may be left out but not set to null (Any keeps mypy quiet;
# `exclude_unset` means the default never reaches the database).
UNSET: Any = None


def normalise_email(value: str) -> str:
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None
    return result.normalized.lower()


def normalise_phone(value: str) -> str:
    raw = value.strip()
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_tags(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        tag = value.strip().lower()
        if tag:
            seen[tag] = None
    return list(seen)


Email = Annotated[
    str,
    Field(max_length=320, examples=["li.wei@example.com"]),
    AfterValidator(normalise_email),
]
Phone = Annotated[
    str,
    Field(
        max_length=40,
        description="Any usual notation; stored in E.164. Without `+country` it is read as a "
        f"{DEFAULT_PHONE_REGION} number.",
        examples=["+86 138 0013 8000"],
    ),
    AfterValidator(normalise_phone),
]
Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=50)]],
    Field(max_length=50, description="Free labels, stored lower-case and de-duplicated."),
    AfterValidator(normalise_tags),
]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]


class Address(BaseModel):
    """A postal address."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["billing", "shipping", "office", "home", "other"] = "office"
    line1: str = Field(min_length=1, max_length=200, examples=["88 Century Avenue"])
    line2: str | None = Field(None, max_length=200)
    city: str | None = Field(None, max_length=100, examples=["Shanghai"])
    state: str | None = Field(None, max_length=100, examples=["Shanghai"])
    postal_code: str | None = Field(None, max_length=20, examples=["200120"])
    country: str | None = Field(
        None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2.", examples=["CN"]
    )


class CustomerFields(BaseModel):
    """Fields a caller may set on a customer."""

    model_config = ConfigDict(extra="forbid")

    legal_name: str | None = Field(
        None, max_length=300, examples=["Shanghai Lianhua Trading Co., Ltd."]
    )
    email: Email | None = Field(None, description="Primary e-mail; stored lower-case.")
    phone: Phone | None = None
    addresses: list[Address] = Field(default_factory=list, max_length=20)
    company_name: str | None = Field(
        None,
        max_length=300,
        description="For a person: the company they belong to (used by the duplicate check).",
        examples=["Lianhua Trading"],
    )
    industry: str | None = Field(None, max_length=100, examples=["manufacturing"])
    region: str | None = Field(None, max_length=100, examples=["east"])
    company_size: str | None = Field(None, max_length=50, examples=["50-249"])
    source_channel: str | None = Field(None, max_length=100, examples=["referral"])
    owner_id: str | None = Field(
        None, max_length=200, description="The account manager (a user id).", examples=["u-17"]
    )
    tags: Tags = Field(default_factory=list, examples=[["vip", "wholesale"]])
    language: str | None = Field(None, max_length=35, examples=["zh-CN"])
    preferred_channel: Channel | None = Field(None, examples=["phone"])
    important_dates: list[ImportantDate] = Field(
        default_factory=list,
        max_length=20,
        description="Recurring dates for care contacts (birthday, founding day...).",
    )
    notes: str | None = Field(None, max_length=10_000, examples=["Prefers calls after 3 pm."])
    custom_attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="Your own attributes (JSON object, at most 50 keys).",
        examples=[{"erp_segment": "K2"}],
    )

    @field_validator("custom_attributes")
    @classmethod
    def _few_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 50:
            raise ValueError("at most 50 custom attributes")
        return value


class CustomerCreate(CustomerFields):
    """A new customer."""

    kind: CustomerKind = Field("person", examples=["organisation"])
    display_name: str = Field(min_length=1, max_length=200, examples=["Lianhua Trading"])
    external_ref: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Your system's id for this customer; unique. Bulk imports are idempotent "
        "by it.",
        examples=["erp-100234"],
    )


class CustomerUpdate(BaseModel):
    """A partial update: only the fields sent change; `null` clears an optional field."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"owner_id": "u-42", "tags": ["vip"], "phone": "+86 138 0013 8000"}]
        },
    )

    display_name: str = Field(UNSET, min_length=1, max_length=200)
    legal_name: str | None = Field(None, max_length=300)
    email: Email | None = None
    phone: Phone | None = None
    addresses: list[Address] | None = Field(None, max_length=20)
    company_name: str | None = Field(None, max_length=300)
    industry: str | None = Field(None, max_length=100)
    region: str | None = Field(None, max_length=100)
    company_size: str | None = Field(None, max_length=50)
    source_channel: str | None = Field(None, max_length=100)
    owner_id: str | None = Field(None, max_length=200, examples=["u-42"])
    tags: Tags | None = None
    language: str | None = Field(None, max_length=35)
    preferred_channel: Channel | None = None
    important_dates: list[ImportantDate] | None = Field(None, max_length=20)
    notes: str | None = Field(None, max_length=10_000)
    custom_attributes: dict[str, Any] | None = None
    external_ref: str | None = Field(None, min_length=1, max_length=200)
    status: Literal["active", "archived"] = Field(
        UNSET, description="`active` restores an archived customer."
    )


class ChurnRisk(BaseModel):
    score: int = Field(ge=0, le=100, examples=[72])
    level: Literal["low", "medium", "high"]
    reasons: list[str] = Field(examples=[["no purchase in 2.5x the usual interval"]])


class Insights(BaseModel):
    """Read-only, computed by the analytics service."""

    tier: Tier | None = Field(None, description="ABC tier by profit contribution.")
    lifecycle_stage: LifecycleStage | None = None
    churn_risk: ChurnRisk | None = None


class CustomerRead(BaseModel):
    """A customer as stored. Without the `pii:read` scope e-mail and phone are masked and
    legal name, addresses, notes and custom attributes are left out."""

    id: UUID = Field(
        description="The customer's id (the key of its events).", examples=[CUSTOMER_ID_EXAMPLE]
    )
    customer_number: str = Field(
        description="Readable number assigned by the service; unique.", examples=["C-000123"]
    )
    kind: CustomerKind = Field(examples=["organisation"])
    status: CustomerStatus = Field(
        description="`archived` after DELETE; `merged` when merged into `merged_into_id`.",
        examples=["active"],
    )
    display_name: str = Field(
        description="A person's name is shortened to its initial (`L***`) without `pii:read`; "
        "an organisation's name is not personal data and always shown.",
        examples=["Lianhua Trading"],
    )
    legal_name: str | None = Field(
        description="Null without `pii:read`.", examples=["Shanghai Lianhua Trading Co., Ltd."]
    )
    email: str | None = Field(
        description="Lower-case; masked (`l***@example.com`) without `pii:read`.",
        examples=["li.wei@example.com"],
    )
    phone: str | None = Field(
        description="E.164; masked (`+86*******8000`) without `pii:read`.",
        examples=["+8613800138000"],
    )
    addresses: list[Address] = Field(description="Empty without `pii:read`.")
    company_name: str | None = Field(examples=["Lianhua Trading"])
    industry: str | None = Field(examples=["manufacturing"])
    region: str | None = Field(examples=["east"])
    company_size: str | None = Field(examples=["50-249"])
    source_channel: str | None = Field(examples=["referral"])
    owner_id: str | None = Field(description="The account manager.", examples=["u-17"])
    tags: list[str] = Field(examples=[["vip", "wholesale"]])
    language: str | None = Field(examples=["zh-CN"])
    preferred_channel: str | None = Field(examples=["phone"])
    important_dates: list[ImportantDate]
    notes: str | None = Field(
        description="Null without `pii:read`.", examples=["Prefers calls after 3 pm."]
    )
    custom_attributes: dict[str, Any] = Field(
        description="Empty without `pii:read` (free JSON may hold personal data).",
        examples=[{"erp_segment": "K2"}],
    )
    external_ref: str | None = Field(description="Your system's id.", examples=["erp-100234"])
    merged_into_id: UUID | None = Field(
        None, description="Set when this record was merged into another (status `merged`)."
    )
    insights: Insights
    version: int = Field(description="The ETag value; send it back in If-Match.", examples=[3])
    created_at: datetime
    updated_at: datetime = Field(description="Last change; the key of incremental sync.")
    archived_at: datetime | None
    erased_at: datetime | None = Field(description="Set once the personal data was erased.")


class DuplicateMatch(BaseModel):
    """A customer that looks like the same one."""

    customer_id: UUID
    customer_number: str
    display_name: str
    matched_on: list[Literal["email", "phone", "name_and_company"]]


class DuplicatePair(BaseModel):
    """Two live customers that look like the same one; merge one into the other."""

    customer: DuplicateMatch
    duplicate: DuplicateMatch


class ContactCreate(BaseModel):
    """A contact person of an organisation."""

    model_config = ConfigDict(extra="forbid")

    name: ShortText = Field(examples=["Wang Fang"])
    role: str | None = Field(None, max_length=100, examples=["purchasing manager"])
    email: Email | None = None
    phone: Phone | None = None
    is_primary: bool = False
    notes: str | None = Field(None, max_length=5000)


class ContactUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"role": "general manager", "is_primary": True}]},
    )

    name: str = Field(UNSET, min_length=1, max_length=200)
    role: str | None = Field(None, max_length=100)
    email: Email | None = None
    phone: Phone | None = None
    is_primary: bool = Field(UNSET)
    notes: str | None = Field(None, max_length=5000)


class ContactRead(BaseModel):
    """A contact person; e-mail and phone masked without `pii:read`."""

    id: UUID
    customer_id: UUID = Field(description="The organisation.")
    name: str = Field(examples=["Wang Fang"])
    role: str | None = Field(examples=["purchasing manager"])
    email: str | None = Field(examples=["wang.fang@example.com"])
    phone: str | None = Field(examples=["+8613912345678"])
    is_primary: bool
    notes: str | None
    version: int = Field(description="The ETag value; send it back in If-Match.", examples=[1])
    created_at: datetime
    updated_at: datetime


class NeedCreate(BaseModel):
    """A business need or requirement."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=100, examples=["product"])
    title: ShortText = Field(examples=["Needs a cold-chain delivery option"])
    description: str | None = Field(None, max_length=5000)
    priority: Priority = "medium"
    status: NeedStatus = "open"
    due_date: date | None = Field(None, examples=["2026-12-31"])


class NeedUpdate(BaseModel):
    """Changes to a need. Status moves open → in_progress → met | dropped; met or dropped needs
    can be reopened (→ open)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"status": "in_progress", "priority": "high"}]},
    )

    category: str = Field(UNSET, min_length=1, max_length=100)
    title: str = Field(UNSET, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    priority: Priority = Field(UNSET)
    status: NeedStatus = Field(UNSET)
    due_date: date | None = None


class NeedRead(BaseModel):
    """A business need or requirement."""

    id: UUID
    customer_id: UUID
    category: str = Field(examples=["product"])
    title: str = Field(examples=["Needs a cold-chain delivery option"])
    description: str | None
    priority: Priority = Field(examples=["high"])
    status: NeedStatus = Field(examples=["in_progress"])
    due_date: date | None = Field(examples=["2026-12-31"])
    version: int = Field(description="The ETag value; send it back in If-Match.", examples=[1])
    created_at: datetime
    updated_at: datetime


class ConsentChange(BaseModel):
    """A grant or withdrawal of one consent purpose."""

    model_config = ConfigDict(extra="forbid")

    purpose: ConsentPurpose = Field(examples=["marketing_email"])
    granted: bool = Field(examples=[True])
    source: str = Field(
        min_length=1,
        max_length=100,
        description="Through which channel the customer gave or withdrew it.",
        examples=["web_form"],
    )
    occurred_at: UtcDatetime | None = Field(
        None,
        description="When the customer did it, with a time zone; defaults to now.",
        examples=["2026-11-20T09:30:00+08:00"],
    )


class ConsentRead(BaseModel):
    """One grant or withdrawal."""

    purpose: ConsentPurpose = Field(examples=["marketing_email"])
    granted: bool = Field(examples=[True])
    source: str = Field(description="Where the customer gave it.", examples=["web_form"])
    occurred_at: datetime = Field(description="When the customer did it.")
    recorded_by: str = Field(description="Token subject that recorded it.", examples=["u-17"])


class ConsentState(BaseModel):
    """Current consent per purpose (purposes never recorded are absent = not granted)."""

    current: list[ConsentRead]
    history: list[ConsentRead] = Field(description="Every change, newest first.")


class HistoryRead(BaseModel):
    """One change."""

    id: int
    entity: Literal["customer", "contact", "need", "consent"]
    entity_id: str
    action: str = Field(examples=["updated"])
    actor: str = Field(description="The token subject that made the change.")
    changed_at: datetime
    changes: dict[str, Any] = Field(
        description="Changed field → {old, new}.",
        examples=[{"owner_id": {"old": "u-17", "new": "u-42"}}],
    )


class MergeRequest(BaseModel):
    """Merge `duplicate_id` into the customer of the path (the survivor)."""

    model_config = ConfigDict(extra="forbid")

    duplicate_id: UUID = Field(examples=[CUSTOMER_ID_EXAMPLE])
    survivorship: dict[str, Literal["survivor", "duplicate"]] = Field(
        default_factory=dict,
        description="Per field, whose value to keep; unnamed fields keep the survivor's value "
        "or, when it is empty, the duplicate's. Tags are always united.",
        examples=[{"email": "duplicate", "phone": "survivor"}],
    )
    dry_run: bool = Field(False, description="Only preview the result; change nothing.")


class MergeResult(BaseModel):
    dry_run: bool
    survivor: CustomerRead = Field(description="The survivor as it is (or would be) afterwards.")
    merged_customer_id: UUID
    changed_fields: list[str]
    moved: dict[str, int] = Field(
        description="Records re-pointed to the survivor.",
        examples=[{"contacts": 2, "needs": 1, "consent_records": 3}],
    )


class ImportRowResult(BaseModel):
    """What happened to one row: `created`, `existing` (its external_ref was imported
    before: not created again) or `error` (see `errors`)."""

    row: int = Field(description="1-based row number (data rows, header excluded).")
    status: Literal["created", "existing", "error"]
    customer_id: UUID | None = None
    customer_number: str | None = None
    external_ref: str | None = None
    errors: list[dict[str, str]] = Field(
        default_factory=list, examples=[[{"field": "email", "message": "not a valid e-mail"}]]
    )


class ImportResult(BaseModel):
    """Counts and one result per row, in the order of the import."""

    created: int
    existing: int
    failed: int
    rows: list[ImportRowResult]


class ExportRead(BaseModel):
    """Everything profiles holds about one customer (GDPR access request)."""

    customer: CustomerRead
    merged_records: list[CustomerRead]
    contacts: list[ContactRead]
    needs: list[NeedRead]
    consent: list[ConsentRead]
    history: list[HistoryRead]


SectionStatus = Literal["ok", "holds_nothing", "unavailable", "error"]


class ServiceSection(BaseModel):
    """What one service holds about the customer, or why it could not say."""

    service: str = Field(examples=["interactions"])
    status: SectionStatus = Field(
        description="`ok`: `data` is the service's GDPR document with its records; "
        "`holds_nothing`: the service said explicitly that it keeps nothing about the customer; "
        "`unavailable`: unreachable or timed out; `error`: it answered with an HTTP error "
        "(a 404 included: the service lacks the export route, which is not the same as "
        "holding nothing) or with something that is not a GDPR document.",
        examples=["ok"],
    )
    http_status: int | None = Field(None, description="The peer's HTTP status, if it answered.")
    detail: str | None = Field(None, description="Why the section is not `ok`.")
    data: GdprDocument | None = Field(
        None, description="The service's own GDPR document (`GET /customers/{id}/export`)."
    )


class GdprExport(BaseModel):
    """Everything every service holds about one customer (GDPR access request)."""

    customer_id: UUID
    complete: bool = Field(
        description="True only when every service answered `ok` or `holds_nothing`."
    )
    services: list[ServiceSection]


ErasureSectionStatus = Literal["erased", "pending", "holds_nothing", "unavailable", "error"]


class ServiceErasure(BaseModel):
    """Whether one service has erased the customer's personal data, and what it kept."""

    service: str = Field(examples=["complaints"])
    status: ErasureSectionStatus = Field(
        description="`erased`: done; `pending`: the service holds the customer's data and has "
        "not erased it yet; `holds_nothing`: nothing to erase; `unavailable`: unreachable or "
        "timed out; `error`: an HTTP error (a 404 included: never counted as erased) or an "
        "answer that is not an erasure report.",
        examples=["erased"],
    )
    erased: bool = Field(
        description="True when nothing identifying is left (`erased` or `holds_nothing`)."
    )
    erased_at: datetime | None = None
    kept: list[str] = Field(
        default_factory=list,
        description="What the service keeps after erasure: anonymous facts for its aggregates.",
    )
    http_status: int | None = Field(None, description="The peer's HTTP status, if it answered.")
    detail: str | None = None


class ErasureStatus(BaseModel):
    """Completion of an erasure in every service."""

    customer_id: UUID
    complete: bool = Field(
        description="True once every service reports `erased` or `holds_nothing`."
    )
    services: list[ServiceErasure]
