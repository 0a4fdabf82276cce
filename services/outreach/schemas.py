"""Request and response models of the outreach service, with examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.contracts.common import CUSTOMER_ID_EXAMPLE
from shared.contracts.outreach import MessageChannel, MessagePurpose, MessageStatus

TemplateKey = str
Locale = Literal["zh-CN", "en"]
RequestedChannel = Literal["email", "sms", "wechat", "preferred"]
KEY_PATTERN = r"^[a-z][a-z0-9_]{1,63}$"
MESSAGE_ID_EXAMPLE = "3d0c5b8e-1f2a-4b6c-9d8e-7f6a5b4c3d2e"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


Variable = str | int | float | bool | None


def _few_variables(value: dict[str, Variable]) -> dict[str, Variable]:
    if len(value) > 50:
        raise ValueError("at most 50 variables")
    for key, item in value.items():
        if len(key) > 64 or not key.isidentifier() or key.startswith("_"):
            raise ValueError(f"variable name {key!r} must be an identifier without a leading _")
        if isinstance(item, str) and len(item) > 2000:
            raise ValueError(f"variable {key!r} is longer than 2000 characters")
    return value


class MessageCreate(Strict):
    """A message to one customer from a template."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": CUSTOMER_ID_EXAMPLE,
                    "template": "case_resolved",
                    "purpose": "transactional",
                    "channel": "preferred",
                    "variables": {"reference": "C-7F3A21", "outcome": "replacement sent"},
                }
            ]
        },
    )

    customer_id: UUID = Field(examples=[CUSTOMER_ID_EXAMPLE])
    template: TemplateKey = Field(pattern=KEY_PATTERN, examples=["case_resolved"])
    purpose: MessagePurpose = Field(
        description="`transactional` (case notices, surveys of the customer's own case) or "
        "`marketing` (greetings, win-back, campaigns: needs the customer's current consent for "
        "the channel). Must be the template's purpose."
    )
    channel: RequestedChannel = Field(
        "preferred",
        description="`preferred`: the customer's preference here, else the profile's, else e-mail.",
    )
    locale: Locale | None = Field(None, description="Default: the customer's language.")
    urgent: bool = Field(
        False, description="Urgent messages go out in quiet hours; others wait until they end."
    )
    variables: dict[str, Variable] = Field(
        default_factory=dict,
        description="Values for the template (at most 50; `name` is filled from the profile).",
    )

    _check_variables = field_validator("variables")(_few_variables)


class StateRead(BaseModel):
    status: MessageStatus
    reason: str | None
    at: datetime


class MessageRead(BaseModel):
    """A message and its delivery state. Recipient, subject and body need `pii:read`."""

    id: UUID = Field(examples=[MESSAGE_ID_EXAMPLE])
    customer_id: UUID
    template_key: str = Field(examples=["case_resolved"])
    template_version: int | None = Field(description="The version rendered (0: built-in).")
    locale: str | None = Field(examples=["zh-CN"])
    purpose: MessagePurpose
    requested_channel: RequestedChannel
    channel: MessageChannel | None = Field(description="The channel used, once resolved.")
    urgent: bool
    status: MessageStatus = Field(
        description="queued → sent → delivered, or deferred (quiet hours, retry), bounced, "
        "failed, suppressed (see `reason`)."
    )
    reason: str | None = Field(
        examples=["consent_withdrawn"],
        description="Why it is in this state: `quiet_hours`, `consent_withdrawn`, `no_consent`, "
        "`frequency_cap`, `no_address`, `customer_erased`, `unknown_customer`, "
        "`provider_error: ...`, `bounced: ...`.",
    )
    trigger: str = Field(
        examples=["api"], description="`api` or the event type that caused the message."
    )
    recipient: str | None = Field(examples=["l***@example.com"])
    subject: str | None
    body: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    history: list[StateRead] = Field(
        default_factory=list, description="Every state with its reason (single reads only)."
    )


class TemplateWrite(Strict):
    """A new version of a template for one locale."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "purpose": "transactional",
                    "subject": "Your case {{ reference }} is resolved",
                    "body": "Dear {{ name or 'customer' }},\n\nYour case {{ reference }} is "
                    "resolved.",
                    "sms_body": "Case {{ reference }} resolved.",
                }
            ]
        },
    )

    purpose: MessagePurpose | None = Field(
        None, description="Required for a new key; a built-in key keeps its purpose."
    )
    subject: str = Field(min_length=1, max_length=500)
    body: str = Field(min_length=1, max_length=20_000)
    sms_body: str | None = Field(None, max_length=1000, description="Text for SMS / WeChat.")


class TemplateRead(BaseModel):
    key: str = Field(examples=["case_resolved"])
    locale: str = Field(examples=["en"])
    version: int = Field(description="0 is the built-in text; each change adds one.")
    purpose: MessagePurpose
    subject: str
    body: str
    sms_body: str | None
    created_by: str = Field(examples=["built-in"])
    created_at: datetime | None


class TemplatePreview(Strict):
    """Render a template (the stored one, or a draft) with example or given values."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"locale": "zh-CN", "variables": {"name": "王芳", "reference": "C-1"}}]
        },
    )

    locale: Locale = "zh-CN"
    version: int | None = Field(None, ge=0, description="Default: the newest.")
    variables: dict[str, Variable] = Field(
        default_factory=dict, description="Merged over the template's example values."
    )
    draft: TemplateWrite | None = Field(None, description="Preview this text instead.")

    _check_variables = field_validator("variables")(_few_variables)


class PreviewRead(BaseModel):
    key: str
    locale: str
    version: int | None
    subject: str
    body: str
    short: str = Field(description="The SMS / WeChat text.")
    variables: dict[str, Any]


class PreferencesWrite(Strict):
    """How the customer wants to be reached (outreach's own preferences)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"timezone": "Asia/Shanghai", "locale": "zh-CN", "channel": "wechat"}]
        },
    )

    timezone: str | None = Field(None, max_length=64, examples=["Asia/Shanghai"])
    locale: Locale | None = None
    channel: MessageChannel | None = None


class ConsentRead(BaseModel):
    purpose: str = Field(examples=["marketing_email"])
    granted: bool
    source: str
    occurred_at: datetime


class PreferencesRead(BaseModel):
    customer_id: UUID
    timezone: str | None
    locale: str | None
    channel: str | None
    language: str | None = Field(description="From the profile.")
    preferred_channel: str | None = Field(description="From the profile.")
    consents: list[ConsentRead] = Field(
        description="Current consent per purpose, as profiles last published it."
    )
    version: int = Field(description="The ETag value; send it back in If-Match.")


class ProviderCallback(Strict):
    """A delivery report from a provider (signed like outgoing requests)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"id": "prov-123", "status": "bounced", "reason": "mailbox unknown"}]
        },
    )

    id: str | None = Field(None, max_length=500, description="The provider's reference.")
    client_ref: UUID | None = Field(None, description="Our message id, as sent.")
    status: Literal["delivered", "bounced", "failed"]
    reason: str | None = Field(None, max_length=500)


class DevMailRead(BaseModel):
    id: int
    received_at: datetime
    message_id: UUID | None
    customer_id: UUID | None
    mail_from: str | None
    recipients: str | None
    subject: str | None
    body: str | None = Field(None, description="The text part, decoded.")
    raw: str | None
