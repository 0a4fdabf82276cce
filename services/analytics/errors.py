"""Domain errors of the analytics service (mapped to problem+json once, by the platform)."""

from shared.problems import NotFound, ProblemError, Unprocessable


class CustomerNotFound(NotFound):
    """No event has mentioned the customer (or it was merged into one that is gone)."""


class InvalidPeriod(Unprocessable):
    """`from` must be before `to`."""


class RebuildFailed(ProblemError):
    status, slug, title = 502, "rebuild-failed", "A source feed could not be read"
