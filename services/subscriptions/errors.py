"""Domain errors of the subscriptions service (mapped to problem+json)."""

from shared.problems import NotFound, ProblemError


class SubscriptionNotFound(NotFound):
    pass


class DeliveryNotFound(NotFound):
    pass


class UnsafeTarget(ProblemError):
    """The webhook URL is not one Kehu will call (SSRF protection, scheme, resolution)."""

    status, slug, title = 422, "unsafe-target", "Webhook URL refused"


class UnknownEventTypes(ProblemError):
    status, slug, title = 422, "unknown-event-types", "Event-type filter matches no event"
