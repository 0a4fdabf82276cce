"""Domain errors of the profiles service (mapped to problem+json by the platform)."""

from shared.problems import Conflict, InvalidTransition, NotFound, ProblemError, Unprocessable


class CustomerNotFound(NotFound):
    pass


class DuplicateCustomer(Conflict):
    slug, title = "duplicate-customer", "Possible duplicate customer"


class CustomerNotActive(Conflict):
    slug, title = "customer-not-active", "Customer is not active"


class NeedTransitionInvalid(InvalidTransition):
    pass


class InvalidMerge(Unprocessable):
    slug, title = "invalid-merge", "Invalid merge"


class ImportTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedImportFormat(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"
