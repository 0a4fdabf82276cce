"""HTTP routes of the complaints service, one module per resource: parse, call the service
layer, shape the response."""

from services.complaints.api import agents, complaints, investigation, workflow

ROUTERS = [complaints.router, workflow.router, investigation.router, agents.router]

OPENAPI_TAGS = [
    {
        "name": "complaints",
        "description": "Intake, lifecycle, SLA, investigation, resolution, revisit.",
    },
    {"name": "agents", "description": "Agents and teams for automatic assignment."},
    {"name": "gdpr", "description": "Data export and erasure status of a customer."},
]

__all__ = ["OPENAPI_TAGS", "ROUTERS"]
