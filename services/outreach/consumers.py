"""Consumed events, each trigger on/off by a setting (`OUTREACH_TRIGGER_*`).

- `kehu.customers`: dimensions (language, preferred channel, owner, important dates), consent
  changes (the consent projection), merges and erasures.
- `survey.invited` (interactions): a message with a signed, single-use survey link.
- case acknowledged / resolved: today the complaint events on `kehu.complaints`; the service
  desk's case events are one setting away (`OUTREACH_CASE_TOPICS`,
  `OUTREACH_CASE_ACKNOWLEDGED_TYPES`, `OUTREACH_CASE_RESOLVED_TYPES`). The handlers read
  `customer_id`, `case_id` or `complaint_id`, and `reference` / `outcome` when present.
- `customer.churn_risk_changed` becoming high: the win-back playbook.
- loyalty level changes and points expiring (`kehu.loyalty.level_changed.v1`,
  `kehu.loyalty.points_expiring.v1`), read by name: `customer_id`, `level`, `points`,
  `expires_on`.

Birthdays and festivals are not events: the greetings job reads the important dates kept here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.outreach import service
from services.outreach.config import Settings
from shared.consumer import EventHandler
from shared.context import RequestContext
from shared.contracts import ANALYTICS_TOPIC, CUSTOMERS_TOPIC, INTERACTIONS_TOPIC
from shared.contracts.analytics import CustomerChurnRiskChanged
from shared.contracts.customers import (
    ConsentChanged,
    CustomerArchived,
    CustomerCreated,
    CustomerErased,
    CustomerMerged,
    CustomerUpdated,
)
from shared.contracts.interactions import SurveyInvited
from shared.events.envelope import CloudEvent

SUBJECT = "system:outreach-consumer"
LOYALTY_LEVEL_CHANGED = "kehu.loyalty.level_changed.v1"
LOYALTY_POINTS_EXPIRING = "kehu.loyalty.points_expiring.v1"

ContextOf = Callable[[AsyncSession], RequestContext]


def topics(settings: Settings) -> list[str]:
    wanted = [CUSTOMERS_TOPIC, INTERACTIONS_TOPIC, ANALYTICS_TOPIC]
    if settings.case_notices:
        wanted += settings.case_topics
    if settings.loyalty_notices:
        wanted.append(settings.loyalty_topic)
    return list(dict.fromkeys(wanted))


def handlers(settings: Settings, context_of: ContextOf) -> dict[str, EventHandler]:
    """The handlers of the triggers switched on, each working through `context_of(session)`."""

    async def dimensions(session: AsyncSession, event: CloudEvent) -> None:
        e = (
            CustomerCreated.model_validate(event.data)
            if event.type == CustomerCreated.event_type()
            else CustomerUpdated.model_validate(event.data)
        )
        await service.customer_dimensions(
            context_of(session), e.customer_id, e.dimensions.model_dump(), e.occurred_at
        )

    async def archived(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerArchived.model_validate(event.data)
        await service.customer_archived(context_of(session), e.customer_id)

    async def merged(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerMerged.model_validate(event.data)
        await service.customer_merged(context_of(session), e.customer_id, e.merged_customer_id)

    async def erased(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerErased.model_validate(event.data)
        await service.erase_customer(context_of(session), e.customer_id, e.occurred_at)

    async def consent(session: AsyncSession, event: CloudEvent) -> None:
        e = ConsentChanged.model_validate(event.data)
        await service.consent_changed(
            context_of(session), e.customer_id, e.purpose, e.granted, e.source, e.occurred_at
        )

    async def invited(session: AsyncSession, event: CloudEvent) -> None:
        e = SurveyInvited.model_validate(event.data)
        await service.survey_invited(
            context_of(session),
            event.type,
            e.customer_id,
            e.invitation_id,
            e.context_type,
            e.channel,
        )

    def case(kind: str) -> EventHandler:
        async def notice(session: AsyncSession, event: CloudEvent) -> None:
            data = dict(event.data or {})
            uuid.UUID(str(data["customer_id"]))  # a case event without a customer is malformed
            await service.case_notice(context_of(session), event.type, event.id, kind, data)

        return notice

    async def churn(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerChurnRiskChanged.model_validate(event.data)
        await service.churn_risk_changed(
            context_of(session), event.id, e.customer_id, e.level, e.reasons
        )

    def loyalty(kind: str) -> EventHandler:
        async def notice(session: AsyncSession, event: CloudEvent) -> None:
            await service.loyalty_notice(
                context_of(session), event.type, event.id, kind, dict(event.data or {})
            )

        return notice

    found: dict[str, EventHandler] = {
        CustomerCreated.event_type(): dimensions,
        CustomerUpdated.event_type(): dimensions,
        CustomerArchived.event_type(): archived,
        CustomerMerged.event_type(): merged,
        CustomerErased.event_type(): erased,
        ConsentChanged.event_type(): consent,
        CustomerChurnRiskChanged.event_type(): churn,
    }
    if settings.survey_invitations:
        found[SurveyInvited.event_type()] = invited
    if settings.case_notices:
        found.update({t: case("acknowledged") for t in settings.case_acknowledged_types})
        found.update({t: case("resolved") for t in settings.case_resolved_types})
    if settings.loyalty_notices:
        found[LOYALTY_LEVEL_CHANGED] = loyalty("level_changed")
        found[LOYALTY_POINTS_EXPIRING] = loyalty("points_expiring")
    return found
