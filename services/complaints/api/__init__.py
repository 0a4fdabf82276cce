"""HTTP routes of the service desk (the complaints service), one module per resource: parse,
call the service layer, shape the response. The case sub-resources (transitions, assignment,
escalations, rating, notes, actions) are mounted twice: under `/cases/{case_id}` for every
type and under `/complaints/{complaint_id}`, the complaint-type view kept for existing
clients."""

from services.complaints.api import agents, cases, complaints, desk, investigation, workflow
from services.complaints.api.common import CASES, COMPLAINTS

ROUTERS = [
    cases.router,
    workflow.router(CASES),
    investigation.router(CASES),
    desk.router,
    complaints.router,
    workflow.router(COMPLAINTS),
    investigation.router(COMPLAINTS),
    agents.router,
]

OPENAPI_TAGS = [
    {
        "name": "cases",
        "description": "Cases of every type (inquiry, service request, technical support, "
        "suggestion, complaint, claim): intake, lifecycle, SLA, routing, escalation, outcome, "
        "revisit; the management queue.",
    },
    {
        "name": "service desk",
        "description": "SLA policies, holidays, teams and skills, routing rules, canned responses.",
    },
    {
        "name": "complaints",
        "description": "The complaint-type view of the cases, kept for existing clients: "
        "answers exactly as before the service desk.",
    },
    {"name": "agents", "description": "Agents and teams for automatic assignment."},
    {"name": "gdpr", "description": "Data export and erasure status of a customer."},
]

__all__ = ["OPENAPI_TAGS", "ROUTERS"]
