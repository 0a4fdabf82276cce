"""The service desk's rules as data, and the pure logic over them: case types and their
lifecycles, SLA policies (ordered, first match wins, the settings matrix as the default last),
routing rules, reference prefixes and the outcome sentence of a notice.

Nothing here touches the database: `service.py` loads the rows and asks these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.complaints.config import SEVERITIES, TIERS, Settings

CASE_TYPES = (
    "inquiry",
    "service_request",
    "technical_support",
    "suggestion",
    "complaint",
    "claim",
)
SERVICE_SUBTYPES = ("installation", "repair", "maintenance", "other")

# Open: the clock runs (unless paused). Outcome states: resolved, or a suggestion's decision.
OPEN_STATUSES = ("received", "acknowledged", "investigating", "waiting_on_customer")
OUTCOME_STATUSES = ("resolved", "accepted", "declined")

LIFECYCLE: dict[str, tuple[str, ...]] = {
    "received": ("acknowledged",),
    "acknowledged": ("investigating",),
    "investigating": ("waiting_on_customer", "resolved"),
    "waiting_on_customer": ("investigating", "resolved"),
    "resolved": ("closed", "investigating"),
    "closed": ("investigating",),
}
SUGGESTION_LIFECYCLE: dict[str, tuple[str, ...]] = {
    "received": ("acknowledged",),
    "acknowledged": ("accepted", "declined"),
    "accepted": ("closed",),
    "declined": ("closed",),
    "closed": (),
}
REOPENABLE = ("resolved", "closed")

REFERENCE_PREFIX = {
    "inquiry": "IQ",
    "service_request": "SR",
    "technical_support": "TS",
    "suggestion": "SG",
    "complaint": "CP",
    "claim": "CL",
}
TYPE_NAMES = {
    "inquiry": "inquiry",
    "service_request": "service request",
    "technical_support": "technical support request",
    "suggestion": "suggestion",
    "complaint": "complaint",
    "claim": "claim",
}


def lifecycle(case_type: str) -> dict[str, tuple[str, ...]]:
    """The moves allowed from each state of a case of `case_type`."""
    return SUGGESTION_LIFECYCLE if case_type == "suggestion" else LIFECYCLE


def default_outcome(case_type: str, status: str) -> str:
    """The outcome code when the agent names none: a suggestion's decision, else `resolved`."""
    return status if case_type == "suggestion" else "resolved"


def outcome_summary(case_type: str, ref: str, status: str, outcome: str) -> str:
    """The sentence a notice to the customer carries: no personal data, only codes."""
    name = TYPE_NAMES[case_type]
    if case_type == "suggestion":
        return f"Your suggestion {ref} has been {status}. Thank you."
    detail = outcome.replace("_", " ")
    return f"Your {name} {ref} has been resolved: {detail}."


# -- SLA policies ------------------------------------------------------------------------------

MATCH_FIELDS = ("type", "subtype", "severity", "tier", "channel")


@dataclass(frozen=True)
class Policy:
    """First-response and resolution targets for the cases it matches (None matches any)."""

    name: str
    first_response_s: int
    resolution_s: int
    pause_states: tuple[str, ...] = ("waiting_on_customer",)
    calendar: dict[str, Any] | None = None
    type: str | None = None
    subtype: str | None = None
    severity: str | None = None
    tier: str | None = None
    channel: str | None = None
    builtin: bool = False

    def matches(self, case: dict[str, Any]) -> bool:
        return all(
            getattr(self, name) is None or getattr(self, name) == case.get(name)
            for name in MATCH_FIELDS
        )


def default_policies(settings: Settings) -> list[Policy]:
    """The severity × tier matrix of the settings as policies: the default after the list."""
    return [
        Policy(
            name=f"default/{severity}/{tier}",
            severity=severity,
            tier=tier,
            first_response_s=settings.targets(severity, tier).first_response_s,
            resolution_s=settings.targets(severity, tier).resolution_s,
            builtin=True,
        )
        for severity in reversed(SEVERITIES)
        for tier in TIERS
    ]


def first_match(policies: Iterable[Policy], case: dict[str, Any]) -> Policy:
    """The first policy matching the case (the defaults cover every severity and tier)."""
    for policy in policies:
        if policy.matches(case):
            return policy
    raise LookupError(f"no SLA policy matches {case}")


# -- routing -----------------------------------------------------------------------------------

ROUTING_FIELDS = ("type", "subtype", "category", "tier")


@dataclass(frozen=True)
class Rule:
    """Route the cases it matches to `team`, to a member with `skill` (None: any member)."""

    team: str
    skill: str | None = None
    type: str | None = None
    subtype: str | None = None
    category: str | None = None
    tier: str | None = None

    def matches(self, case: dict[str, Any]) -> bool:
        return all(
            getattr(self, name) is None or getattr(self, name) == case.get(name)
            for name in ROUTING_FIELDS
        )


def route(rules: Sequence[Rule], case: dict[str, Any]) -> Rule | None:
    """The first rule matching the case, or None (the case stays unrouted)."""
    return next((rule for rule in rules if rule.matches(case)), None)


def within_window(delivered_at: datetime, received_at: datetime, window_days: float) -> bool:
    """Is a claim received within `window_days` of delivery (delivery day counted from the
    delivery instant)?"""
    age = received_at - delivered_at
    return age.total_seconds() <= window_days * 86400
