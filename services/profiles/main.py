"""The profiles service: `uvicorn services.profiles.main:create_app --factory`."""

from fastapi import FastAPI

from services.profiles.config import Settings
from services.profiles.models import inbox, outbox
from shared.app import ServiceSpec, create_service_app
from shared.contracts import CUSTOMERS_TOPIC

DESCRIPTION = """\
The complete customer archive:
customers, contacts, needs, consent, merge and GDPR.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        ServiceSpec(
            name="profiles",
            title="Kehu profiles",
            description=DESCRIPTION,
            settings=settings or Settings(),
            outbox=outbox,
            inbox=inbox,
            publishes=[CUSTOMERS_TOPIC],
        )
    )
