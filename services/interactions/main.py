"""The interactions service: `uvicorn services.interactions.main:create_app --factory`."""

from fastapi import FastAPI

from services.interactions.api import OPENAPI_TAGS, ROUTERS
from services.interactions.config import Settings
from services.interactions.consumers import consumer_spec
from services.interactions.gdpr import GDPR
from services.interactions.jobs import overdue_scheduler, revisit_scheduler
from services.interactions.models import audit_log, idempotency_keys, inbox, outbox
from services.interactions.privacy import PRIVACY
from shared.app import ServiceSpec, create_service_app
from shared.contracts import INTERACTIONS_TOPIC

DESCRIPTION = """\
Every contact with a customer, follow-ups and revisits, purchases and satisfaction surveys.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.
Free text and contact names are encrypted at rest and shown only to callers with `pii:read`
(else `[redacted]`). Reads of unmasked personal data, every change and every export are in the
append-only audit log (`GET /audit`, scope `audit:read`); say why in an `X-Purpose` header.
A read of unmasked personal data is logged once per customer per request (`read_pii`, the
record ids in `resource_id`, the fields returned in `fields`).

Publishes on `kehu.interactions`: interaction.logged, followup.scheduled / completed /
overdue, purchase.recorded / refunded / cancelled, survey.submitted. Consumes `kehu.customers`
(important dates, merges, erasure) and `kehu.analytics` (tier changes move the revisit plan).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    return create_service_app(
        ServiceSpec(
            name="interactions",
            title="Kehu interactions",
            description=DESCRIPTION,
            settings=settings,
            outbox=outbox,
            inbox=inbox,
            routers=ROUTERS,
            publishes=[INTERACTIONS_TOPIC],
            consumers=[consumer_spec(settings)],
            background=[overdue_scheduler, revisit_scheduler]
            if settings.schedulers_enabled
            else [],
            openapi_tags=OPENAPI_TAGS,
            audit=audit_log,
            privacy=PRIVACY,
            idempotency=idempotency_keys,
            gdpr=GDPR,
        )
    )
