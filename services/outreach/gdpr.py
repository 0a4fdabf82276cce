"""The outreach service's part of GDPR: export of what it holds about a customer, erasure state.

Mounted by the platform as `GET /customers/{id}/export` and `GET /customers/{id}/erasure`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from services.outreach import repository as repo
from services.outreach import views
from shared.context import RequestContext
from shared.gdpr import GdprSpec, Holding


async def export(ctx: RequestContext, customer_id: uuid.UUID) -> Holding:
    session = ctx.session
    messages = await repo.messages_of(session, customer_id)
    states = await repo.states_of(session, *[m.id for m in messages]) if messages else []
    customer = await repo.customer(session, customer_id)
    consents = await repo.consents_of(session, customer_id)
    links = await repo.links_of(session, customer_id)
    tasks = await repo.tasks_of(session, customer_id)
    mail = await repo.dev_mail_of(session, customer_id)
    shown = await views.shown(ctx, messages, states)
    data = {
        "messages": [m.model_dump(mode="json") for m in shown],
        "preferences": (
            {
                "timezone": customer.timezone,
                "locale": customer.locale,
                "channel": customer.channel,
                "language": customer.language,
                "preferred_channel": customer.preferred_channel,
                "important_dates": customer.important_dates,
            }
            if customer is not None
            else {}
        ),
        "consents": [
            {
                "purpose": c.purpose,
                "granted": c.granted,
                "source": c.source,
                "occurred_at": c.occurred_at.isoformat(),
            }
            for c in consents
        ],
        "survey_links": [
            {
                "invitation_id": str(link.invitation_id),
                "message_id": str(link.message_id) if link.message_id else None,
                "greeting_name": link.greeting_name,
                "expires_at": link.expires_at.isoformat(),
                "used_at": link.used_at.isoformat() if link.used_at else None,
                "survey_id": str(link.survey_id) if link.survey_id else None,
            }
            for link in links
        ],
        "tasks": [
            {
                "kind": t.kind,
                "status": t.status,
                "payload": t.payload,
                "done_at": t.done_at.isoformat() if t.done_at else None,
            }
            for t in tasks
        ],
        "dev_mail": [
            {"received_at": m.received_at.isoformat(), "subject": m.subject, "raw": m.raw}
            for m in mail
        ],
    }
    return Holding(data=data, erased_at=customer.erased_at if customer else None)


async def erasure(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[bool, datetime | None]:
    customer = await repo.customer(ctx.session, customer_id)
    holds = customer is not None or bool(await repo.messages_of(ctx.session, customer_id))
    return holds, customer.erased_at if customer else None


GDPR = GdprSpec(
    service="outreach",
    export=export,
    erasure=erasure,
    kept_after_erasure=[
        "messages without address, subject, body or values: template, purpose, channel, "
        "states with their reasons and timings",
        "the consent history as profiles published it (purposes, dates, sources)",
    ],
    export_description=(
        "`data.messages`: every message to the customer with its delivery history; "
        "`data.preferences`, `data.consents` (as profiles last published them), "
        "`data.survey_links`, `data.tasks` (playbook work in other services) and `data.dev_mail` "
        "(the dev SMTP sink's copies, dev only)."
    ),
)
