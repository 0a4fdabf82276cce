"""The outreach service: `uvicorn services.outreach.main:create_app --factory`."""

from collections.abc import Awaitable, Callable
from typing import cast

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.outreach import consumers, devmail, service
from services.outreach.api import DEV_ROUTERS, OPENAPI_TAGS, ROUTERS
from services.outreach.config import Settings
from services.outreach.gdpr import GDPR
from services.outreach.models import audit_log, idempotency_keys, inbox, outbox
from services.outreach.privacy import PRIVACY
from shared.app import BackgroundTask, ConsumerSpec, ServiceSpec, create_service_app
from shared.context import RequestContext
from shared.contracts import OUTREACH_TOPIC
from shared.scheduler import periodic

DESCRIPTION = """Messages to customers by e-mail, SMS and WeChat, with consent, quiet hours and a
frequency cap; templates per purpose and locale; the customer-facing survey page.

Every endpoint except health, metrics and these docs needs `Authorization: Bearer <jwt>` with
`outreach:read` or `outreach:write`. Errors are RFC 9457 `application/problem+json`.

**Purposes**: `transactional` (case notices, survey invitations, loyalty notices) goes out
whenever the customer has an address; `marketing` (birthday and festival greetings, win-back)
needs the customer's current consent for the channel (`marketing_email`, `marketing_sms`,
`marketing_wechat`, kept here from profiles' `consent.changed`), else it is `suppressed` with
the reason. Marketing e-mail carries an unsubscribe link that withdraws the consent in profiles.

**Triggers** (each `OUTREACH_TRIGGER_*` on/off): `survey.invited` → an invitation with a signed,
single-use link to the survey page; case acknowledged / resolved → a notice with the reference;
birthdays and `OUTREACH_FESTIVALS` → greetings; churn risk becoming high → a follow-up task
for the owner in interactions and a win-back message; loyalty level changes and expiring
points → a notice.

**Pages without a token** (not in this document): `GET/POST /s/{token}` the survey page (answers
go to interactions as the invitation's survey; a used or expired link gets a clear page),
`GET/POST /u/{token}` unsubscribe, `POST /callbacks/{email|sms|wechat}` providers' delivery
reports `{"id" | "client_ref", "status": "delivered|bounced|failed", "reason"}` signed with
`X-Kehu-Timestamp` and `X-Kehu-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<body>")>`. In dev,
`GET /dev/mail` and `/dev/mail/ui` show what the dev SMTP sink received.

Recipients, subjects and bodies are personal data: encrypted at rest, masked without
`pii:read`, and every unmasked read is in the audit log (`GET /audit`).
"""


async def dispatch_pass(app: FastAPI, session: AsyncSession) -> int:
    """One pass of the dispatcher and the playbook tasks, at the app's clock's time."""
    ctx = RequestContext.system(session, app.state, subject="system:outreach-dispatcher")
    return await service.dispatch_due(ctx) + await service.run_tasks(ctx)


async def greetings_pass(app: FastAPI, session: AsyncSession) -> int:
    """Queue today's greetings (each once); the dispatcher sends them."""
    ctx = RequestContext.system(session, app.state, subject="system:outreach-greetings")
    await service.greetings_due(ctx)
    return 0  # one pass queues everything due today: wait for the next interval


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    background: list[Callable[[FastAPI], Awaitable[None]]] = []
    if settings.dispatcher_enabled:
        background.append(
            periodic("outreach-dispatch", dispatch_pass, lambda app: settings.dispatch_interval_s)
        )
        background.append(
            periodic(
                "outreach-greetings", greetings_pass, lambda app: settings.greetings_interval_s
            )
        )
    if settings.dev_mail_enabled and settings.dev_smtp_sink_port is not None:
        background.append(devmail.sink_task(settings.dev_smtp_sink_port))

    def consumer_context(session: AsyncSession) -> RequestContext:
        return RequestContext.system(session, app.state, subject=consumers.SUBJECT)

    consumer_specs = []
    if settings.consumers_enabled:
        consumer_specs.append(
            ConsumerSpec(
                group_id=settings.consumer_group,
                topics=consumers.topics(settings),
                handlers=consumers.handlers(settings, consumer_context),
            )
        )
    app = create_service_app(
        ServiceSpec(
            name="outreach",
            title="Kehu outreach",
            description=DESCRIPTION,
            settings=settings,
            outbox=outbox,
            inbox=inbox,
            routers=[*ROUTERS, *(DEV_ROUTERS if settings.dev_mail_enabled else [])],
            publishes=[OUTREACH_TOPIC],
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
