"""Request and response models of the subscriptions API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from shared.contracts.common import UtcInstant

EventTypePattern = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9_.*]{1,200}$"),
    Field(
        description="An event type (`kehu.complaint.resolved.v1`) or a pattern where `*` "
        "matches any characters (`kehu.complaint.*`, `*`).",
        examples=["kehu.complaint.*"],
    ),
]
DeliveryStatus = Literal["pending", "succeeded", "failed"]
URL_EXAMPLE = "https://hooks.example.com/kehu"


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(
        description="Where Kehu POSTs events. Must be https to a public address unless the "
        "deployment's allow-list permits the target.",
        examples=[URL_EXAMPLE],
    )
    event_types: list[EventTypePattern] = Field(
        min_length=1,
        max_length=50,
        description="Which events to deliver; each must match at least one known event type.",
        examples=[["kehu.complaint.*", "kehu.customer.created.v1"]],
    )
    customer_ids: list[uuid.UUID] | None = Field(
        None,
        max_length=1000,
        description="Only events about these customers; omit or null for every customer.",
        examples=[None],
    )
    description: str | None = Field(
        None, max_length=500, examples=["Helpdesk sync: complaints of key accounts"]
    )
    enabled: bool = Field(True, description="Disabled subscriptions receive nothing.")


class SubscriptionUpdate(BaseModel):
    """Only the fields you send change; `customer_ids: null` removes the customer filter."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = Field(None, examples=[URL_EXAMPLE])
    event_types: list[EventTypePattern] | None = Field(None, min_length=1, max_length=50)
    customer_ids: list[uuid.UUID] | None = Field(None, max_length=1000)
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = Field(
        None,
        description="Re-enabling clears the disabled reason and resumes pending deliveries "
        "at once.",
    )


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str = Field(examples=[URL_EXAMPLE])
    event_types: list[str] = Field(examples=[["kehu.complaint.*"]])
    customer_ids: list[str] | None = None
    description: str | None = None
    enabled: bool
    disabled_reason: str | None = Field(
        None,
        description="Why Kehu disabled it: `endpoint_gone` (410), `failing` (failed for "
        "longer than the disable-after period) or `manual`.",
        examples=["failing"],
    )
    disabled_at: datetime | None = None
    failing_since: datetime | None = Field(
        None, description="Start of the current streak of failed attempts; null when healthy."
    )
    previous_secret_expires_at: datetime | None = Field(
        None, description="While set and in the future, the previous secret also signs."
    )
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Also the ETag; send it as If-Match when updating.")


class SecretRead(BaseModel):
    secret: str = Field(
        description="The signing secret, `whsec_` + base64. Keep it private.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    previous_secret_expires_at: datetime | None = Field(
        None,
        description="Until then deliveries carry a second signature made with the previous "
        "secret, so receivers can switch secrets without losing a delivery.",
    )


class SubscriptionCreated(SubscriptionRead):
    secret: str = Field(
        description="The signing secret (`whsec_...`); also at `GET .../secret`.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_period_s: int | None = Field(
        None,
        ge=0,
        le=7 * 24 * 3600,
        description="How long the old secret keeps signing too (default: the deployment's "
        "setting, 24 h). 0 retires it at once.",
        examples=[86400],
    )


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int = Field(description="1 for the first attempt of a delivery (or of a replay).")
    attempted_at: datetime
    status_code: int | None = Field(None, description="HTTP status; null if none came back.")
    latency_ms: int
    error: str | None = Field(None, examples=["HTTP 503", "ConnectTimeout: timed out"])
    response_excerpt: str | None = Field(None, description="The first 500 characters.")


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="The `webhook-id` header: deduplicate on it.")
    subscription_id: uuid.UUID
    event_id: str
    event_type: str = Field(examples=["kehu.complaint.resolved.v1"])
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None = Field(None, description="When pending: the next try.")
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class DeliveryDetail(DeliveryRead):
    payload: dict[str, Any] = Field(description="The CloudEvent sent as the body.")
    attempts: list[AttemptRead] = Field(description="Every attempt, oldest first.")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: UtcInstant = Field(
        description="Replay every delivery of this subscription created at or after this "
        "time, whatever its status.",
        examples=["2026-11-20T00:00:00Z"],
    )


class ReplayResult(BaseModel):
    replayed: int = Field(description="How many deliveries were queued again.")


class PingResult(BaseModel):
    success: bool = Field(description="True when the endpoint answered 2xx.")
    delivery: DeliveryDetail
