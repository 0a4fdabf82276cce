"""Events of the service desk (the complaints service) about cases of every type, on
`kehu.complaints`.

Every case (inquiry, service request, technical support, suggestion, complaint, claim) publishes
`case.*`; complaint-type cases publish the older `complaint.*` events as well, so existing
consumers keep working. No event carries personal data: no names, contact details or free text,
only types, codes, times and the human reference (`SR-2026-000123`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from shared.contracts import COMPLAINTS_TOPIC
from shared.contracts.common import CustomerEvent
from shared.events.registry import contract

CaseType = Literal[
    "inquiry", "service_request", "technical_support", "suggestion", "complaint", "claim"
]
CaseStatus = Literal[
    "received",
    "acknowledged",
    "investigating",
    "waiting_on_customer",
    "resolved",
    "accepted",
    "declined",
    "closed",
]
Severity = Literal["low", "medium", "high", "critical"]
EscalationReason = Literal["critical_intake", "critical_raised", "sla_breach", "manual"]

REFERENCE_EXAMPLE = "SR-2026-000123"


class CaseEvent(CustomerEvent):
    case_id: UUID
    type: CaseType = Field(examples=["service_request"])
    subtype: str | None = Field(None, examples=["repair"])
    reference: str = Field(
        description="The human reference: type prefix, year, per-year sequence.",
        examples=[REFERENCE_EXAMPLE],
    )


@contract("case.received", 1, COMPLAINTS_TOPIC, "A case of any type was registered.")
class CaseReceived(CaseEvent):
    channel: str = Field(examples=["phone"])
    category: str = Field(examples=["product_quality"])
    severity: Severity
    sla_policy: str = Field(description="The SLA policy that matched.", examples=["repair"])
    first_response_due_at: datetime
    resolution_due_at: datetime
    team: str | None = Field(None, examples=["field-service"])
    assignee: str | None = Field(None, examples=["agent-7"])


@contract(
    "case.status_changed",
    1,
    COMPLAINTS_TOPIC,
    "A case moved between states (published for every transition).",
)
class CaseStatusChanged(CaseEvent):
    from_status: CaseStatus
    to_status: CaseStatus
    actor_id: str | None = None


@contract(
    "case.acknowledged",
    1,
    COMPLAINTS_TOPIC,
    "The customer got a first response: what a notice to the customer needs (no personal data).",
)
class CaseAcknowledged(CaseEvent):
    first_response_seconds: int = Field(ge=0, description="SLA time from receipt.")
    first_response_met: bool
    resolution_due_at: datetime = Field(description="When the customer can expect an outcome.")


@contract(
    "case.resolved",
    1,
    COMPLAINTS_TOPIC,
    "A case reached its outcome: what a notice to the customer needs (no personal data), and "
    "the revisit the owner is to make (interactions puts it on their agenda).",
)
class CaseResolved(CaseEvent):
    status: CaseStatus = Field(
        description="`resolved`, or `accepted` / `declined` for suggestions."
    )
    outcome: str = Field(
        description="Outcome code (no free text).", examples=["repaired", "accepted", "refunded"]
    )
    outcome_summary: str = Field(
        description="A sentence for the notice, built from type, reference and outcome.",
        examples=["Your service request SR-2026-000123 has been resolved: repaired."],
    )
    resolution_seconds: int = Field(ge=0, description="SLA time to the outcome (pauses excluded).")
    resolution_met: bool
    owner_id: str | None = Field(None, description="The agent who owns the case.")
    revisit_due_at: datetime | None = Field(
        None, description="When to revisit the customer; null when the type has no revisit."
    )


@contract("case.closed", 1, COMPLAINTS_TOPIC, "A case was closed.")
class CaseClosed(CaseEvent):
    revisit_outcome: str | None = Field(None, examples=["satisfied"])


@contract("case.reopened", 1, COMPLAINTS_TOPIC, "A resolved or closed case reopened.")
class CaseReopened(CaseEvent):
    pass


@contract(
    "case.escalated",
    1,
    COMPLAINTS_TOPIC,
    "A case was escalated and moved: level 1 to the team lead, level 2 to the management queue.",
)
class CaseEscalated(CaseEvent):
    reason: EscalationReason
    level: int = Field(ge=1, description="1 = team lead, 2 = management, ...")
    assignee: str | None = Field(None, description="Who holds the case now.")
    queue: str | None = Field(
        None, description="`management` when it waits in the management queue."
    )


@contract(
    "case.queued",
    1,
    COMPLAINTS_TOPIC,
    "A routed case found no member of the team with the skill: it waits in the team's queue.",
)
class CaseQueued(CaseEvent):
    team: str = Field(examples=["field-service"])
    skill: str | None = Field(None, examples=["repair"])


class CaseSlaFields(CaseEvent):
    target: Literal["first_response", "resolution"]
    due_at: datetime


@contract(
    "case.sla_warning",
    1,
    COMPLAINTS_TOPIC,
    "80% of an SLA target's time has passed (once per target).",
)
class CaseSlaWarning(CaseSlaFields):
    pass


@contract("case.sla_breached", 1, COMPLAINTS_TOPIC, "An SLA target passed unmet (once per target).")
class CaseSlaBreached(CaseSlaFields):
    pass


@contract(
    "case.rated", 1, COMPLAINTS_TOPIC, "The customer rated the outcome of a case of any type."
)
class CaseRated(CaseEvent):
    rating: int = Field(ge=1, le=5)


@contract(
    "case.revisited",
    1,
    COMPLAINTS_TOPIC,
    "The revisit after the outcome was done; its outcome is recorded on the case.",
)
class CaseRevisited(CaseEvent):
    revisit_outcome: str = Field(examples=["satisfied"])
    followup_id: UUID | None = None
