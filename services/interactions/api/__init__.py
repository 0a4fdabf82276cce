"""HTTP routes of the interactions service, one module per resource: parse, call the service
layer, map to responses. The GDPR routes come from `services.interactions.gdpr`."""

from services.interactions.api import (
    cadence,
    followups,
    fx_rates,
    interactions,
    purchases,
    surveys,
    timeline,
)

ROUTERS = [
    interactions.router,
    followups.router,
    timeline.router,
    cadence.router,
    purchases.router,
    fx_rates.router,
    surveys.router,
]
OPENAPI_TAGS = [
    {"name": "interactions", "description": "Every contact with a customer."},
    {"name": "follow-ups", "description": "Planned contacts, the agenda, overdue tracking."},
    {"name": "customers", "description": "Per-customer views: timeline and revisit cadence."},
    {
        "name": "purchases",
        "description": "Orders, margins and refunds; exchange rates into the reporting currency.",
    },
    {"name": "surveys", "description": "Satisfaction surveys (CSAT by dimension, NPS)."},
    {"name": "gdpr", "description": "Data export and erasure status of a customer."},
]

__all__ = ["OPENAPI_TAGS", "ROUTERS"]
