"""The complaints service: `uvicorn services.complaints.main:create_app --factory`."""

from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import consumers, service
from services.complaints.api import OPENAPI_TAGS, ROUTERS
from services.complaints.config import Settings
from services.complaints.gdpr import GDPR
from services.complaints.models import audit_log, idempotency_keys, inbox, outbox
from services.complaints.privacy import PRIVACY
from shared.app import BackgroundTask, ConsumerSpec, ServiceSpec, create_service_app
from shared.context import RequestContext
from shared.contracts import (
    ANALYTICS_TOPIC,
    COMPLAINTS_TOPIC,
    CUSTOMERS_TOPIC,
    INTERACTIONS_TOPIC,
)
from shared.scheduler import periodic

DESCRIPTION = """The service desk: cases of every type a customer service team handles
(inquiries, service requests for installation, repair and maintenance, technical support,
suggestions, complaints, claims and returns), from intake through routing, SLA clocks from
SLA policies and a holiday calendar, escalation to the team lead and the management queue, the
outcome the customer is told of, to the revisit. `/cases` serves every type; `/complaints` is
the complaint-type view, kept answering exactly as before for existing clients.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.

Complainant details and free text (subject, description, notes, root cause, resolution, rating
comment, action descriptions) are encrypted at rest and shown only to callers with `pii:read`
(else masked: `[redacted]`, `m***@example.com`). Reads of unmasked personal data, every change
and every export are in the append-only audit log (`GET /audit`, scope `audit:read`); say why
in an `X-Purpose` header.
A read of unmasked personal data is logged once per customer per request (`read_pii`, the
record ids in `resource_id`, the fields returned in `fields`).
"""


async def sla_pass(app: FastAPI, session: AsyncSession) -> int:
    """One pass of the SLA scheduler in `session`, at the app's clock's time."""
    return await service.run_sla_checks(RequestContext.system(session, app.state))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    background: list[Callable[[FastAPI], Awaitable[None]]] = []
    if settings.sla_scheduler_enabled:
        background.append(
            periodic("complaints-sla", sla_pass, lambda app: settings.sla_scheduler_interval_s)
        )

    def consumer_context(session: AsyncSession) -> RequestContext:
        return RequestContext.system(session, app.state, subject=consumers.SUBJECT)

    consumer_specs = []
    if settings.consumers_enabled:
        consumer_specs.append(
            ConsumerSpec(
                group_id=consumers.GROUP_ID,
                topics=[ANALYTICS_TOPIC, CUSTOMERS_TOPIC, INTERACTIONS_TOPIC],
                handlers=consumers.handlers(consumer_context),
            )
        )
    app = create_service_app(
        ServiceSpec(
            name="complaints",
            title="Kehu service desk (complaints service)",
            description=DESCRIPTION,
            settings=settings,
            outbox=outbox,
            inbox=inbox,
            routers=ROUTERS,
            publishes=[COMPLAINTS_TOPIC],
            consumers=consumer_specs,
            background=cast(list[BackgroundTask], background),
            openapi_tags=OPENAPI_TAGS,
            audit=audit_log,
            privacy=PRIVACY,
            idempotency=idempotency_keys,
            gdpr=GDPR,
        )
    )
    return app
