"""Domain errors of the complaints service, mapped to problem+json by the platform."""

from shared.problems import Conflict, InvalidTransition, NotFound, Unprocessable


class ComplaintNotFound(NotFound):
    slug, title = "complaint-not-found", "Complaint not found"


class ActionNotFound(NotFound):
    slug, title = "action-not-found", "Action not found"


class TransitionNotAllowed(InvalidTransition):
    """409 naming the complaint's `current_status` and the `allowed` moves from it."""


class ReopenWindowPassed(InvalidTransition):
    slug, title = "reopen-window-passed", "Reopen window has passed"


class NoAgentAvailable(Conflict):
    slug, title = "no-agent-available", "No agent available"


class UnknownAgent(Unprocessable):
    slug, title = "unknown-agent", "Unknown agent"


class MissingField(Unprocessable):
    slug, title = "missing-field", "A required field for this change is missing"


class NotRateable(Conflict):
    slug, title = "not-rateable", "Complaint cannot be rated yet"
