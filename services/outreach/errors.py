"""Domain errors of the outreach service, mapped to problem+json by the platform."""

from shared.problems import Conflict, NotFound, ProblemError, Unprocessable


class MessageNotFound(NotFound):
    slug, title = "message-not-found", "Message not found"


class TemplateNotFound(NotFound):
    slug, title = "template-not-found", "Template not found"


class UnknownTemplate(Unprocessable):
    slug, title = "unknown-template", "No such template"


class PurposeMismatch(Unprocessable):
    slug, title = "purpose-mismatch", "The purpose does not match the template's"


class InvalidTemplate(Unprocessable):
    slug, title = "invalid-template", "The template does not render"


class InvalidPreference(Unprocessable):
    slug, title = "invalid-preference", "Invalid preference"


class CustomerErased(Conflict):
    slug, title = "customer-erased", "The customer was erased"


class BadCallback(ProblemError):
    status, slug, title = (
        401,
        "bad-callback-signature",
        "The callback is not signed by the provider",
    )
