"""Domain errors of the complaints service, mapped to problem+json by the platform."""

from shared.problems import Conflict, InvalidTransition, NotFound, Unprocessable


class ComplaintNotFound(NotFound):
    slug, title = "complaint-not-found", "Complaint not found"


class CaseNotFound(NotFound):
    slug, title = "case-not-found", "Case not found"


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


class ReturnWindowPassed(Unprocessable):
    """422 naming the delivery time, the window and the days since delivery."""

    slug, title = "return-window-passed", "The claim is outside the return window"


class TypeChangeNotAllowed(Unprocessable):
    slug, title = "type-change-not-allowed", "The case cannot change to this type"


class ResponseNotFound(NotFound):
    slug, title = "response-not-found", "Canned response not found"


class TeamNotFound(NotFound):
    slug, title = "team-not-found", "Team not found"


class HolidayNotFound(NotFound):
    slug, title = "holiday-not-found", "Holiday not found"
