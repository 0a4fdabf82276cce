"""The subscriptions service: `uvicorn services.subscriptions.main:create_app --factory`."""

from fastapi import FastAPI

from services.subscriptions.api import router
from services.subscriptions.config import Settings
from services.subscriptions.consumers import CONSUMER_GROUP, batch_handler
from services.subscriptions.delivery import delivery_worker, prune_deliveries
from services.subscriptions.gdpr import GDPR
from services.subscriptions.models import audit_log, idempotency_keys, inbox, outbox
from services.subscriptions.privacy import PRIVACY
from shared.app import ConsumerSpec, ServiceSpec, create_service_app
from shared.asyncapi import catalog_router
from shared.contracts import DOMAIN_TOPICS, SUBSCRIPTIONS_TOPIC
from shared.scheduler import periodic

DESCRIPTION = """\
Webhook subscriptions to Kehu's domain events, delivered per the
[Standard Webhooks](https://www.standardwebhooks.com/) spec as structured CloudEvents, with
retries for about three days, a delivery log, replay, secret rotation and SSRF protection.
Also serves the AsyncAPI document (`/asyncapi.yaml`), the event catalog (`/catalog`) and the
developer portal (`/portal`), which need no token.

Every other endpoint needs `Authorization: Bearer <jwt>`; each operation names the scope it
requires (`subscriptions:read` or `subscriptions:write`). Errors are RFC 9457
`application/problem+json`.
"""


async def prune_job(app: FastAPI) -> None:
    run = periodic(
        "prune-deliveries", prune_deliveries, lambda a: a.state.settings.delivery_prune_interval_s
    )
    await run(app)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    built: list[FastAPI] = []
    app = create_service_app(
        ServiceSpec(
            name="subscriptions",
            title="Kehu subscriptions",
            description=DESCRIPTION,
            settings=settings,
            outbox=outbox,
            inbox=inbox,
            routers=[router, catalog_router()],
            publishes=[SUBSCRIPTIONS_TOPIC],
            consumers=[
                ConsumerSpec(
                    CONSUMER_GROUP,
                    DOMAIN_TOPICS,
                    {},
                    batch_handler=batch_handler(settings, lambda: built[0].state),
                )
            ],
            background=[delivery_worker, prune_job],
            audit=audit_log,
            privacy=PRIVACY,
            idempotency=idempotency_keys,
            gdpr=GDPR,
            openapi_tags=[
                {
                    "name": "subscriptions",
                    "description": "Webhook subscriptions, their delivery log and replay.",
                },
                {
                    "name": "docs",
                    "description": "AsyncAPI document, event catalog and developer portal.",
                },
            ],
        )
    )
    built.append(app)
    return app
