"""Domain errors of the analytics service (mapped to problem+json once, by the platform)."""

from shared.problems import Conflict, NotFound, Unprocessable


class CustomerNotFound(NotFound):
    """No event has mentioned the customer (or it was merged into one that is gone)."""


class InvalidPeriod(Unprocessable):
    """`from` must be before `to`."""


class RebuildFailed(Exception):
    """A source feed could not be read; the rebuild rolled back."""


class RebuildRunning(Conflict):
    """A rebuild is already running on this replica."""


class NoRebuild(NotFound):
    """No rebuild has run on this replica since it started."""
