"""Request and response models of the complaints API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from shared.contracts.common import CUSTOMER_ID_EXAMPLE

Channel = Literal["phone", "email", "web_form", "in_person", "social", "other"]
Category = Literal[
    "product_quality", "service", "delivery", "billing", "information", "expectation", "other"
]
Severity = Literal["low", "medium", "high", "critical"]
Status = Literal[
    "received", "acknowledged", "investigating", "waiting_on_customer", "resolved", "closed"
]
SlaStatus = Literal["on_track", "warning", "breached"]
SlaTargetName = Literal["first_response", "resolution"]
RootCauseCategory = Literal[
    "product_defect",
    "process",
    "people",
    "supplier",
    "communication",
    "system",
    "policy",
    "customer_error",
    "other",
]
RevisitOutcome = Literal["satisfied", "partially_satisfied", "not_satisfied", "unreachable"]
ActionKind = Literal["corrective", "preventive"]
ActionStatus = Literal["open", "in_progress", "done", "cancelled"]

COMPLAINT_ID_EXAMPLE = "3b0c2f8e-6d1a-4f7b-9c2e-5a4d3c2b1a09"
# Optional in PATCH bodies but not nullable: leave a field out to keep it unchanged.
Omitted = SkipJsonSchema[None]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Complainant(BaseModel):
    """Who complained (personal data: shown only with `pii:read`, erased with the customer)."""

    name: str | None = Field(None, max_length=200, examples=["Maija Virtanen"])
    email: EmailStr | None = Field(None, examples=["maija@example.com"])
    phone: str | None = Field(None, max_length=40, examples=["+358 40 123 4567"])


class ComplainantRead(BaseModel):
    """Who complained. Without `pii:read`: name `[redacted]`, e-mail and phone masked."""

    name: str | None = Field(None, examples=["Maija Virtanen"])
    email: str | None = Field(None, examples=["maija@example.com", "m***@example.com"])
    phone: str | None = Field(None, examples=["+358 40 123 4567", "+35*********4567"])


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: UUID = Field(
        description="The complaining customer.", examples=[CUSTOMER_ID_EXAMPLE]
    )
    channel: Channel = Field(description="Where the complaint came in.", examples=["email"])
    complainant: Complainant = Field(
        default_factory=Complainant, description="Contact details of the person complaining."
    )
    subject: str = Field(min_length=1, max_length=300, examples=["Parcel arrived damaged"])
    description: str = Field(
        min_length=1, max_length=10_000, examples=["The box was crushed and the vase broken."]
    )
    category: Category = Field(examples=["delivery"])
    severity: Severity = Field(
        description="`critical` complaints are escalated to management at once.",
        examples=["high"],
    )
    related_purchase_id: UUID | None = Field(None, description="The purchase complained about.")
    related_interaction_id: UUID | None = Field(
        None, description="The interaction the complaint came in with."
    )
    assignee: str | None = Field(
        None, min_length=1, max_length=200, description="Assign to this agent at once."
    )
    team: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Assign automatically to the least-loaded active agent of this team.",
        examples=["returns"],
    )

    @model_validator(mode="after")
    def _one_assignment(self) -> ComplaintCreate:
        if self.assignee and self.team:
            raise ValueError("give either assignee or team, not both")
        return self


class ComplaintUpdate(BaseModel):
    """Investigation and resolution details; send only the fields to change."""

    model_config = ConfigDict(extra="forbid")

    subject: ShortText | Omitted = None
    description: LongText | Omitted = None
    category: Category | Omitted = None
    severity: Severity | Omitted = Field(
        None, description="Changing severity re-computes the SLA deadlines."
    )
    root_cause_category: RootCauseCategory | Omitted = Field(None, examples=["supplier"])
    root_cause: LongText | Omitted = Field(None, examples=["Carrier stacked heavy parcels on top"])
    resolution: LongText | Omitted = Field(None, examples=["Replacement vase sent by courier"])


class TransitionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_status: Status = Field(
        description="The state to move to. `investigating` from `resolved` or `closed` reopens "
        "the complaint (within the reopen window).",
        examples=["acknowledged"],
    )
    note: str | None = Field(None, min_length=1, max_length=10_000, examples=["Called back"])
    resolution: str | None = Field(
        None,
        min_length=1,
        max_length=10_000,
        description="Resolution text; required to resolve unless already set.",
    )
    root_cause_category: RootCauseCategory | None = None
    revisit_outcome: RevisitOutcome | None = Field(
        None, description="Outcome of the revisit; required to close.", examples=["satisfied"]
    )


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: Status | None = Field(description="Null for the intake.")
    to_status: Status
    actor: str | None = Field(description="Subject of the caller, or `system`.")
    note: str | None = Field(
        description="`[redacted]` without `pii:read`; null after the customer was erased."
    )
    at: datetime


class SlaRead(BaseModel):
    status: SlaStatus = Field(description="`breached` once any target was missed.")
    active_target: SlaTargetName | None = Field(
        description="The target the clock runs for now; null when resolved or closed."
    )
    remaining_seconds: int | None = Field(
        description="SLA seconds left on the active target (negative when overdue).",
        examples=[5400],
    )
    paused: bool = Field(description="True while waiting on the customer.")
    paused_seconds: int = Field(description="SLA seconds the clock has been stopped in total.")
    first_response_target_s: int = Field(description="Target from the severity × tier matrix.")
    resolution_target_s: int = Field(description="Target from the severity × tier matrix.")
    first_response_due_at: datetime
    resolution_due_at: datetime = Field(description="Moves out by the time spent paused.")
    first_response_breached: bool
    resolution_breached: bool


class ComplaintRead(BaseModel):
    id: UUID = Field(examples=[COMPLAINT_ID_EXAMPLE])
    customer_id: UUID = Field(examples=[CUSTOMER_ID_EXAMPLE])
    channel: Channel
    category: Category
    severity: Severity
    status: Status
    tier: Literal["A", "B", "C"] = Field(description="Customer tier the SLA targets come from.")
    complainant: ComplainantRead | None = Field(
        description="Masked without `pii:read`; null after the customer was erased."
    )
    subject: str | None = Field(description="`[redacted]` without `pii:read`.")
    description: str | None = Field(description="`[redacted]` without `pii:read`.")
    related_purchase_id: UUID | None
    related_interaction_id: UUID | None
    assignee: str | None
    team: str | None
    escalation_level: int = Field(description="0 = not escalated, 1 = team lead, 2+ = management")
    received_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    sla: SlaRead
    root_cause_category: RootCauseCategory | None
    root_cause: str | None = Field(
        description="`[redacted]` without `pii:read`; null after the customer was erased."
    )
    resolution: str | None = Field(
        description="`[redacted]` without `pii:read`; null after the customer was erased."
    )
    rating: int | None
    rating_comment: str | None = Field(
        description="`[redacted]` without `pii:read`; null after the customer was erased."
    )
    revisit_due_at: datetime | None = Field(description="When to revisit the customer.")
    revisit_outcome: RevisitOutcome | None
    reopen_count: int
    allowed_transitions: list[Status] = Field(description="The moves allowed from `status`.")
    version: int = Field(description="Also the ETag; send it as If-Match to update.")
    created_at: datetime
    updated_at: datetime


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=10_000, examples=["Asked carrier for photos"])


class NoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    author: str
    body: str | None = Field(
        description="`[redacted]` without `pii:read`; null after the customer was erased."
    )
    created_at: datetime


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ActionKind = Field(
        description="`corrective` fixes this case; `preventive` stops it happening again."
    )
    description: str = Field(min_length=1, max_length=10_000, examples=["Switch carrier"])
    owner: str = Field(min_length=1, max_length=200, examples=["ops-lead"])
    due_date: date | None = Field(None, examples=["2026-12-01"])
    status: ActionStatus = "open"


class ActionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: LongText | Omitted = None
    owner: Name | Omitted = None
    due_date: date | None = None
    status: ActionStatus | Omitted = Field(None, examples=["done"])


class ActionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    complaint_id: UUID
    kind: ActionKind
    description: str | None = Field(
        description="`[redacted]` without `pii:read`; null after the customer was erased."
    )
    owner: str
    due_date: date | None
    status: ActionStatus
    created_at: datetime
    updated_at: datetime


class AssignmentRequest(BaseModel):
    """Either `assignee` (manual) or `team` (automatic: the least-loaded active agent)."""

    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(None, min_length=1, max_length=200, examples=["agent-7"])
    team: str | None = Field(None, min_length=1, max_length=100, examples=["returns"])

    @model_validator(mode="after")
    def _exactly_one(self) -> AssignmentRequest:
        if (self.assignee is None) == (self.team is None):
            raise ValueError("give exactly one of assignee or team")
        return self


class EscalationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, min_length=1, max_length=10_000, examples=["VIP customer"])


class RatingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5, description="1 = very unhappy ... 5 = very happy.")
    comment: str | None = Field(None, min_length=1, max_length=10_000, examples=["Quick fix"])


class AgentUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    team: str = Field(min_length=1, max_length=100, examples=["returns"])
    active: bool = Field(True, description="Inactive agents get no automatic assignments.")


class AgentRead(BaseModel):
    id: str = Field(examples=["agent-7"])
    team: str
    active: bool
    open_complaints: int = Field(description="Open complaints assigned to the agent now.")


# -- GDPR --------------------------------------------------------------------------------------


class ComplaintExport(BaseModel):
    complaint: ComplaintRead
    transitions: list[TransitionRead]
    notes: list[NoteRead]
    actions: list[ActionRead]
