"""The complaints service: `uvicorn services.complaints.main:create_app --factory`."""

from fastapi import FastAPI

from services.complaints.config import Settings
from services.complaints.models import inbox, outbox
from shared.app import ServiceSpec, create_service_app
from shared.contracts import COMPLAINTS_TOPIC

DESCRIPTION = """Complaint intake, SLA clocks, escalation, resolution and revisit.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        ServiceSpec(
            name="complaints",
            title="Kehu complaints",
            description=DESCRIPTION,
            settings=settings or Settings(),
            outbox=outbox,
            inbox=inbox,
            publishes=[COMPLAINTS_TOPIC],
        )
    )
