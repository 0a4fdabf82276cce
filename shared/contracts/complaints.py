"""Events published by the complaints service on `kehu.complaints`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts import COMPLAINTS_TOPIC
from shared.contracts.common import CustomerEvent
from shared.events.registry import contract

ComplaintStatus = Literal[
    "received", "acknowledged", "investigating", "waiting_on_customer", "resolved", "closed"
]
Severity = Literal["low", "medium", "high", "critical"]
Category = Literal[
    "product_quality", "service", "delivery", "billing", "information", "expectation", "other"
]
SlaTarget = Literal["first_response", "resolution"]


class ComplaintEvent(CustomerEvent):
    complaint_id: UUID


@contract("complaint.received", 1, COMPLAINTS_TOPIC, "A complaint was registered.")
class ComplaintReceived(ComplaintEvent):
    channel: Literal["phone", "email", "web_form", "in_person", "social", "other"]
    category: Category
    severity: Severity
    first_response_due_at: datetime
    resolution_due_at: datetime


@contract(
    "complaint.status_changed",
    1,
    COMPLAINTS_TOPIC,
    "A complaint moved between states (published for every transition).",
)
class ComplaintStatusChanged(ComplaintEvent):
    from_status: ComplaintStatus
    to_status: ComplaintStatus
    actor_id: str | None = None


@contract("complaint.acknowledged", 1, COMPLAINTS_TOPIC, "The customer got a first response.")
class ComplaintAcknowledged(ComplaintEvent):
    first_response_seconds: int = Field(
        ge=0, description="SLA time from receipt to first response (paused time excluded)."
    )
    first_response_met: bool


@contract(
    "complaint.assigned",
    1,
    COMPLAINTS_TOPIC,
    "A complaint was given to an agent and/or a team (on intake or reassignment).",
)
class ComplaintAssigned(ComplaintEvent):
    assignee_id: str | None = Field(None, description="The agent (a user id).")
    team: str | None = Field(None, examples=["after-sales"])


@contract("complaint.escalated", 1, COMPLAINTS_TOPIC, "A complaint was escalated.")
class ComplaintEscalated(ComplaintEvent):
    reason: Literal["critical_intake", "critical_raised", "sla_breach", "manual"]
    level: int = Field(ge=1, description="1 = team lead, 2 = management, ...")


class SlaFields(ComplaintEvent):
    target: SlaTarget
    due_at: datetime


@contract(
    "complaint.sla_warning",
    1,
    COMPLAINTS_TOPIC,
    "80% of an SLA target's time has passed (published once per target).",
)
class ComplaintSlaWarning(SlaFields):
    pass


@contract(
    "complaint.sla_breached",
    1,
    COMPLAINTS_TOPIC,
    "An SLA target passed unmet (published once per target).",
)
class ComplaintSlaBreached(SlaFields):
    pass


@contract("complaint.resolved", 1, COMPLAINTS_TOPIC, "A complaint was resolved.")
class ComplaintResolved(ComplaintEvent):
    category: Category
    severity: Severity
    root_cause: str | None = Field(None, examples=["packaging"])
    resolution_seconds: int = Field(ge=0, description="SLA time to resolve (pauses excluded).")
    resolution_met: bool


@contract("complaint.reopened", 1, COMPLAINTS_TOPIC, "A resolved or closed complaint reopened.")
class ComplaintReopened(ComplaintEvent):
    pass


@contract("complaint.closed", 1, COMPLAINTS_TOPIC, "A complaint was closed after its revisit.")
class ComplaintClosed(ComplaintEvent):
    revisit_outcome: str | None = Field(None, examples=["satisfied"])


@contract("complaint.rated", 1, COMPLAINTS_TOPIC, "The customer rated the complaint's resolution.")
class ComplaintRated(ComplaintEvent):
    rating: int = Field(ge=1, le=5)
