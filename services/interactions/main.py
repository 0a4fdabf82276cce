"""The interactions service: `uvicorn services.interactions.main:create_app --factory`."""

from fastapi import FastAPI

from services.interactions.config import Settings
from services.interactions.models import inbox, outbox
from shared.app import ServiceSpec, create_service_app
from shared.contracts import INTERACTIONS_TOPIC

DESCRIPTION = """\
Every contact with a customer, follow-ups and revisits, purchases and satisfaction surveys.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        ServiceSpec(
            name="interactions",
            title="Kehu interactions",
            description=DESCRIPTION,
            settings=settings or Settings(),
            outbox=outbox,
            inbox=inbox,
            publishes=[INTERACTIONS_TOPIC],
        )
    )
