"""The analytics service: `uvicorn services.analytics.main:create_app --factory`."""

from fastapi import FastAPI

from services.analytics.config import Settings
from services.analytics.models import inbox, outbox
from shared.app import ServiceSpec, create_service_app
from shared.contracts import ANALYTICS_TOPIC

DESCRIPTION = """\
Read models:
ABC tiers, RFM, lifecycle, churn risk, satisfaction and complaint aggregates.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(
        ServiceSpec(
            name="analytics",
            title="Kehu analytics",
            description=DESCRIPTION,
            settings=settings or Settings(),
            outbox=outbox,
            inbox=inbox,
            publishes=[ANALYTICS_TOPIC],
        )
    )
