"""Request and response models of the complaints API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
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


CaseType = Literal[
    "inquiry", "service_request", "technical_support", "suggestion", "complaint", "claim"
]
ServiceSubtype = Literal["installation", "repair", "maintenance", "other"]
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
ClaimKind = Literal["claim", "return", "exchange"]
Outcome = Literal[
    "resolved",
    "answered",
    "installed",
    "repaired",
    "maintained",
    "workaround",
    "replaced",
    "refunded",
    "exchanged",
    "rejected",
    "accepted",
    "declined",
    "no_fault_found",
    "other",
]
Tier = Literal["A", "B", "C"]
Locale = Annotated[
    str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)
]
REFERENCE_EXAMPLE = "SR-2026-000123"


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

    from_status: CaseStatus | None = Field(description="Null for the intake.")
    to_status: CaseStatus
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


class CaseFields(BaseModel):
    """What a complaint and a case of any type read alike."""

    id: UUID = Field(examples=[COMPLAINT_ID_EXAMPLE])
    customer_id: UUID = Field(examples=[CUSTOMER_ID_EXAMPLE])
    channel: Channel
    category: Category
    severity: Severity
    tier: Literal["A", "B", "C"] = Field(description="Customer tier the SLA targets come from.")
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
    version: int = Field(description="Also the ETag; send it as If-Match to update.")
    created_at: datetime
    updated_at: datetime


class ComplaintRead(CaseFields):
    """A complaint-type case, as `/complaints` has always answered it."""

    status: Status
    complainant: ComplainantRead | None = Field(
        description="Masked without `pii:read`; null after the customer was erased."
    )
    allowed_transitions: list[Status] = Field(description="The moves allowed from `status`.")


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


# -- cases of every type -----------------------------------------------------------------------


class ClaimCreate(BaseModel):
    """What a claim (or return, exchange) is about; it must come within the return window."""

    model_config = ConfigDict(extra="forbid")

    kind: ClaimKind = Field("claim", description="`return` and `exchange` are claims too.")
    purchase_id: UUID = Field(description="The purchase claimed about (interactions).")
    amount: Decimal = Field(
        gt=0, max_digits=18, decimal_places=4, description="Amount claimed.", examples=["129.00"]
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])
    delivered_at: datetime = Field(
        description="When the purchase was delivered: the return window runs from here.",
        examples=["2026-11-20T10:00:00Z"],
    )
    override_return_window: bool = Field(
        False,
        description="Accept the claim outside the return window: needs `cases:override` "
        "(managers and admins).",
    )


class ClaimRead(BaseModel):
    kind: ClaimKind
    purchase_id: UUID | None
    amount: Decimal = Field(examples=["129.00"])
    currency: str
    delivered_at: datetime
    return_window_days: int = Field(description="The window the claim was checked against.")
    window_overridden_by: str | None = Field(
        description="The manager who accepted it outside the window, if one did."
    )


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: CaseType = Field(examples=["service_request"])
    subtype: ServiceSubtype | None = Field(
        None,
        description="Service requests only (required there): installation, repair, "
        "maintenance or other.",
        examples=["repair"],
    )
    customer_id: UUID = Field(examples=[CUSTOMER_ID_EXAMPLE])
    channel: Channel = Field(examples=["phone"])
    contact: Complainant = Field(
        default_factory=Complainant, description="The person who got in touch (personal data)."
    )
    subject: str = Field(min_length=1, max_length=300, examples=["Washing machine leaks"])
    description: str = Field(
        min_length=1, max_length=10_000, examples=["Water under the machine after each wash."]
    )
    category: Category = Field("other", examples=["product_quality"])
    severity: Severity = Field(
        "medium", description="`critical` escalates to management at once.", examples=["high"]
    )
    related_purchase_id: UUID | None = None
    related_interaction_id: UUID | None = None
    claim: ClaimCreate | None = Field(None, description="Claims only (required there).")
    assignee: str | None = Field(None, min_length=1, max_length=200)
    team: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Assign within this team; without `team` or `assignee` the routing rules "
        "decide.",
    )

    @model_validator(mode="after")
    def _fits_the_type(self) -> CaseCreate:
        if self.assignee and self.team:
            raise ValueError("give either assignee or team, not both")
        if (self.type == "service_request") != (self.subtype is not None):
            raise ValueError("subtype is required for service requests and only for them")
        if (self.type == "claim") != (self.claim is not None):
            raise ValueError("claim is required for claims and only for them")
        return self


class CaseUpdate(ComplaintUpdate):
    """Details of a case; a change of type, subtype or severity re-applies the SLA policies
    (the time already paused is kept)."""

    type: CaseType | Omitted = Field(None, description="Not to or from `claim`.")
    subtype: ServiceSubtype | Omitted = None


class CaseTransitionRequest(TransitionRequest):
    to_status: CaseStatus = Field(  # type: ignore[assignment]
        description="The state to move to; suggestions: received → acknowledged → accepted | "
        "declined → closed; the other types: as complaints.",
        examples=["acknowledged"],
    )
    outcome: Outcome | None = Field(
        None,
        description="The outcome code a notice tells the customer (resolving); defaults to "
        "`resolved`, or the decision for suggestions.",
        examples=["repaired"],
    )


class CaseSlaRead(SlaRead):
    policy: str = Field(description="The SLA policy that matched.", examples=["repair"])
    pause_states: list[CaseStatus] = Field(description="States the clock stops in.")


class CaseRead(CaseFields):
    type: CaseType
    subtype: ServiceSubtype | None
    reference: str = Field(examples=[REFERENCE_EXAMPLE])
    status: CaseStatus
    contact: ComplainantRead | None = Field(
        description="Masked without `pii:read`; null after the customer was erased."
    )
    claim: ClaimRead | None
    queue: Literal["management"] | None = Field(
        description="`management` while it waits in the management queue."
    )
    outcome: Outcome | None
    sla: CaseSlaRead
    allowed_transitions: list[CaseStatus]


class CaseNoteCreate(BaseModel):
    """A note: its own text, or a canned response's (`response_id`), or both (text after)."""

    model_config = ConfigDict(extra="forbid")

    body: str | None = Field(None, min_length=1, max_length=10_000, examples=["Called back"])
    response_id: UUID | None = Field(None, description="Insert this canned response's text.")

    @model_validator(mode="after")
    def _something(self) -> CaseNoteCreate:
        if self.body is None and self.response_id is None:
            raise ValueError("give body, response_id or both")
        return self


# -- the desk's configuration ------------------------------------------------------------------


class Calendar(BaseModel):
    """When a policy's SLA clock runs: round the clock, or business hours; holidays skipped by
    business hours always and round the clock with `skip_holidays`."""

    model_config = ConfigDict(extra="forbid")

    business_hours: bool = False
    timezone: str = Field("UTC", examples=["Asia/Shanghai"])
    day_start_hour: int = Field(9, ge=0, le=23)
    day_end_hour: int = Field(17, ge=1, le=24)
    weekdays: list[int] = Field(
        [0, 1, 2, 3, 4], description="0 = Monday ... 6 = Sunday.", examples=[[0, 1, 2, 3, 4]]
    )
    skip_holidays: bool = Field(False, description="Round the clock, but not on holidays.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day not in range(7) for day in value):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))


class SlaPolicyIn(BaseModel):
    """Matches cases on every criterion given (a criterion left out matches any value)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["repair"])
    type: CaseType | None = Field(None, examples=["service_request"])
    subtype: ServiceSubtype | None = Field(None, examples=["repair"])
    severity: Severity | None = None
    tier: Tier | None = None
    channel: Channel | None = None
    first_response_s: int = Field(gt=0, examples=[7200])
    resolution_s: int = Field(gt=0, examples=[172800])
    pause_states: list[CaseStatus] = Field(
        ["waiting_on_customer"], description="States in which the clock stops."
    )
    calendar: Calendar | None = Field(
        None, description="Null: the service's calendar (settings `COMPLAINTS_BUSINESS_*`)."
    )

    @field_validator("pause_states")
    @classmethod
    def _open_states(cls, value: list[str]) -> list[str]:
        if any(state not in ("waiting_on_customer", "investigating") for state in value):
            raise ValueError("only waiting_on_customer and investigating can pause the clock")
        return list(dict.fromkeys(value))


class SlaPolicyRead(SlaPolicyIn):
    position: int | None = Field(description="Order of matching; null for the defaults.")
    builtin: bool = Field(
        description="A default from the settings' severity × tier matrix, matched after the "
        "list (read-only)."
    )


class SlaPolicies(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policies: list[SlaPolicyIn] = Field(
        max_length=200,
        description="In order: the first match wins; the defaults (the severity × tier "
        "matrix) come after the list.",
    )

    @field_validator("policies")
    @classmethod
    def _unique_names(cls, value: list[SlaPolicyIn]) -> list[SlaPolicyIn]:
        names = [p.name for p in value]
        if len(set(names)) != len(names) or any(n.startswith("default/") for n in names):
            raise ValueError("policy names are unique and do not start with default/")
        return value


class SlaPoliciesRead(BaseModel):
    policies: list[SlaPolicyRead]


class HolidayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, examples=["国庆节 National Day"])


class HolidayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date = Field(examples=["2026-10-01"])
    name: str


class TeamMember(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=200, examples=["agent-7"])
    skills: list[Annotated[str, StringConstraints(min_length=1, max_length=50)]] = Field(
        [], max_length=50, examples=[["repair", "installation"]]
    )
    active: bool = True


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead: str | None = Field(
        None, min_length=1, max_length=200, description="Level-1 escalations go to the lead."
    )
    description: str | None = Field(None, max_length=500, examples=["Field service engineers"])
    members: list[TeamMember] = Field(
        max_length=500, description="Every member (agents not listed leave the team)."
    )


class TeamMemberRead(TeamMember):
    open_cases: int = Field(description="Open cases assigned to the member now.")


class TeamRead(BaseModel):
    name: str = Field(examples=["field-service"])
    lead: str | None
    description: str | None
    members: list[TeamMemberRead]
    queued: int = Field(description="Open cases of the team waiting for a member.")


class RoutingRuleIn(BaseModel):
    """Routes the cases matching every criterion given to a team member with `skill`."""

    model_config = ConfigDict(extra="forbid")

    type: CaseType | None = Field(None, examples=["service_request"])
    subtype: ServiceSubtype | None = Field(None, examples=["repair"])
    category: Category | None = None
    tier: Tier | None = None
    team: str = Field(min_length=1, max_length=100, examples=["field-service"])
    skill: str | None = Field(
        None, min_length=1, max_length=50, description="Null: any member.", examples=["repair"]
    )


class RoutingRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[RoutingRuleIn] = Field(max_length=200, description="In order: first match wins.")


class CannedResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: CaseType | None = Field(None, description="Null: for every case type.")
    locale: Locale = Field(examples=["zh-CN"])
    title: str = Field(min_length=1, max_length=200, examples=["维修预约确认"])
    body: str = Field(
        min_length=1,
        max_length=10_000,
        examples=["您好，我们已为您预约上门维修，工程师将在24小时内联系您。"],
    )


class CannedResponseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: CaseType | Omitted = None
    locale: Locale | Omitted = None
    title: ShortText | Omitted = None
    body: LongText | Omitted = None


class CannedResponseRead(CannedResponseIn):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    version: int
    created_at: datetime
    updated_at: datetime


# -- GDPR --------------------------------------------------------------------------------------


class ComplaintExport(BaseModel):
    complaint: ComplaintRead
    transitions: list[TransitionRead]
    notes: list[NoteRead]
    actions: list[ActionRead]


class CaseExport(BaseModel):
    case: CaseRead
    transitions: list[TransitionRead]
    notes: list[NoteRead]
    actions: list[ActionRead]
