"""The loyalty service: `uvicorn services.loyalty.main:create_app --factory`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.loyalty import consumers, service
from services.loyalty.api import OPENAPI_TAGS, ROUTERS
from services.loyalty.config import Settings
from services.loyalty.gdpr import GDPR
from services.loyalty.models import audit_log, idempotency_keys, inbox, outbox
from services.loyalty.privacy import PRIVACY
from shared.app import BackgroundTask, ConsumerSpec, ServiceSpec, create_service_app
from shared.context import RequestContext
from shared.contracts import ANALYTICS_TOPIC, CUSTOMERS_TOPIC, INTERACTIONS_TOPIC, LOYALTY_TOPIC
from shared.scheduler import periodic

DESCRIPTION = """The loyalty programme: points, membership levels, rewards and coupons.

Points are held in **lots** (earned at, pending until the return window ends, expiring at the
end of the month `LOYALTY_EXPIRY_MONTHS` after earning); every change is an append-only ledger
entry, so a balance is always explained (`GET /members/{id}/ledger`). Purchases earn from
`purchase.recorded`, refunds reverse in proportion, cancellations in full; each source event
counts once. Redemptions serialise on the member, so none can overspend.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires (`loyalty:read`, `loyalty:write`, and
`loyalty:manage` for levels and rewards). Errors are RFC 9457 `application/problem+json`.
The only personal datum here is the birthday (from the profile's important dates): sealed at
rest, shown only with `pii:read`, erased with the customer.
"""


async def jobs_pass(app: FastAPI, session: AsyncSession) -> int:
    """One pass of the time-driven work (expiry, notices, birthdays, monthly levels) in
    `session`, at the app's clock's time."""
    return await service.run_jobs(RequestContext.system(session, app.state))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    background: list[Callable[[FastAPI], Awaitable[None]]] = []
    if settings.jobs_enabled:
        background.append(periodic("loyalty-jobs", jobs_pass, lambda app: settings.job_interval_s))

    def consumer_context(session: AsyncSession) -> RequestContext:
        return RequestContext.system(session, app.state, subject=consumers.SUBJECT)

    consumer_specs = []
    if settings.consumers_enabled:
        consumer_specs.append(
            ConsumerSpec(
                group_id=consumers.GROUP_ID,
                topics=[INTERACTIONS_TOPIC, CUSTOMERS_TOPIC, ANALYTICS_TOPIC],
                handlers=consumers.handlers(consumer_context),
            )
        )
    app = create_service_app(
        ServiceSpec(
            name="loyalty",
            title="Kehu loyalty",
            description=DESCRIPTION,
            settings=settings,
            outbox=outbox,
            inbox=inbox,
            routers=ROUTERS,
            publishes=[LOYALTY_TOPIC],
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
