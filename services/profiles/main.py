"""The profiles service: `uvicorn services.profiles.main:create_app --factory`."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles import consumers
from services.profiles.api import OPENAPI_TAGS, ROUTERS
from services.profiles.config import Settings
from services.profiles.gdpr import GDPR
from services.profiles.models import audit_log, idempotency_keys, inbox, outbox
from services.profiles.privacy import PRIVACY
from shared import crypto
from shared.app import ConsumerSpec, ServiceSpec, create_service_app
from shared.context import RequestContext
from shared.contracts import ANALYTICS_TOPIC, CUSTOMERS_TOPIC

DESCRIPTION = """\
The complete customer archive:
customers, contacts, needs, consent, merge and GDPR.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>`;
each operation names the scope it requires. Errors are RFC 9457 `application/problem+json`.
Updates need `If-Match` with the resource's `ETag`; creating POSTs accept `Idempotency-Key`.
Personal data (names, e-mail, phone, addresses, notes) never leaves this service in events.

Data protection: personal data is encrypted at rest (AES-GCM with rotating keys), so the text
search `q` matches substrings only of non-personal text (customer number, organisation and
company names) and personal data (full name, e-mail, phone) only exactly, via keyed blind
indexes. Callers without `pii:read` get a masked view from every endpoint. Every response with
unmasked personal data and every change is written to the append-only audit log
(`GET /audit`, scope `audit:read`); say why you access data in an `X-Purpose` header. With
`PROFILES_AGENTS_OWN_CUSTOMERS_ONLY=true`, role `agent` sees only customers it owns.
GDPR: `GET /customers/{id}/export` is what profiles holds; `GET /customers/{id}/gdpr-export`
collects every service's document about a customer (interactions, complaints, analytics,
subscriptions, loyalty and outreach by default, `PROFILES_GDPR_PEERS`), `complete` only when each
answered `ok` or `holds_nothing`; `GET /customers/{id}/erasure` reports erasure per service. Erasing
(`customers:erase`) and merging (`customers:merge`) are for managers and admins.
"""
IDEMPOTENCY_SEAL_CONTEXT = "profiles.idempotency_keys.body"


def create_app(settings: Settings | None = None) -> FastAPI:
    crypto.keyring()  # fail fast: production refuses to start without encryption keys

    def consumer_context(session: AsyncSession) -> RequestContext:
        return RequestContext.system(session, app.state, subject=consumers.SUBJECT)

    app = create_service_app(
        ServiceSpec(
            name="profiles",
            title="Kehu profiles",
            description=DESCRIPTION,
            settings=settings or Settings(),
            outbox=outbox,
            inbox=inbox,
            routers=ROUTERS,
            publishes=[CUSTOMERS_TOPIC],
            consumers=[
                ConsumerSpec(
                    consumers.GROUP_ID,
                    [ANALYTICS_TOPIC],
                    consumers.handlers(consumer_context),
                    # A fetched batch of insights in a few statements, not four per event.
                    batch_handler=consumers.batch_handler(consumer_context),
                    batch_types=set(consumers.INSIGHTS),
                )
            ],
            openapi_tags=OPENAPI_TAGS,
            audit=audit_log,
            privacy=PRIVACY,
            idempotency=idempotency_keys,
            # Replies stored before the shared module keep opening under their old context.
            idempotency_seal_context=IDEMPOTENCY_SEAL_CONTEXT,
            gdpr=GDPR,
        )
    )
    return app
