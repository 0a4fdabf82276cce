"""HTTP routes of the outreach service, one module per resource: parse, call the service
layer, shape the response."""

from services.outreach.api import dev, messages, preferences, public, templates

ROUTERS = [messages.router, templates.router, preferences.router, public.router]
DEV_ROUTERS = [dev.router]

OPENAPI_TAGS = [
    {"name": "messages", "description": "Messages to customers and their delivery state."},
    {"name": "templates", "description": "Templates per purpose and locale, versioned."},
    {"name": "preferences", "description": "Time zone, locale, channel; consent held here."},
    {"name": "gdpr", "description": "Data export and erasure status of a customer."},
]

__all__ = ["DEV_ROUTERS", "OPENAPI_TAGS", "ROUTERS"]
