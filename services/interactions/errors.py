"""Domain errors of the interactions service, mapped to problem+json once by the platform."""

from shared.problems import Conflict, InvalidTransition, NotFound, ProblemError, Unprocessable

__all__ = [
    "Conflict",
    "InvalidTransition",
    "MissingExchangeRate",
    "NotFound",
    "PurchaseRefConflict",
    "RefundExceedsPurchase",
    "SurveySuppressed",
]


class RefundExceedsPurchase(Unprocessable):
    slug, title = "refund-exceeds-purchase", "Refund exceeds what remains refundable"


class PurchaseRefConflict(ProblemError):
    status, slug, title = 409, "purchase-ref-conflict", "External reference already used"


class SurveySuppressed(ProblemError):
    status, slug, title = 409, "survey-suppressed", "Survey invitation suppressed"


class MissingExchangeRate(Unprocessable):
    slug, title = "missing-exchange-rate", "No exchange rate for the currency on that date"
