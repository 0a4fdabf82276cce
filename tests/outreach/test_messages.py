"""Outreach against the real stack: invitations by e-mail through the SMTP sink, consent and
suppression, quiet hours, duplicates, retries and bounces, unsubscribe, the win-back playbook,
GDPR."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.outreach import repository
from shared.contracts.interactions import SurveyInvited
from tests.helpers import eventually
from tests.outreach.conftest import (
    ADMIN,
    SHANGHAI,
    SMS_CALLBACK_SECRET,
    World,
    link_in,
    shanghai,
)


async def invite(world: World, customer_id: str, **extra: Any) -> dict[str, Any]:
    response = await world.client.post(
        world.urls["interactions"] + "/survey-invitations",
        json={"customer_id": customer_id, **extra},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    invitation: dict[str, Any] = response.json()
    return invitation


async def test_a_survey_invitation_sends_an_email_the_sink_receives_with_a_working_link(
    noon: World,
) -> None:
    world = noon
    customer = await world.customer()
    await invite(world, customer["id"])

    message = await world.message_in(customer["id"], "sent", "survey_invitation")
    assert message["purpose"] == "transactional" and message["channel"] == "email"
    assert message["recipient"] == customer["email"]
    [mail] = await world.mail_of(message["id"])
    assert customer["email"] in mail["recipients"]
    assert mail["subject"] == "Tell us how we did"
    link = link_in(mail["body"], "/s/")
    assert link.startswith(world.urls["outreach"])

    page = await world.client.get(link)
    assert page.status_code == 200, page.text
    assert "<form" in page.text and 'name="nps"' in page.text
    assert customer["display_name"] in page.text  # the greeting name, nothing more
    assert customer["email"] not in page.text
    # The page in the other language, and a forged link: a clear page, never a 500.
    chinese = await world.client.get(link, params={"lang": "zh-CN"})
    assert chinese.status_code == 200 and "满意度调查" in chinese.text
    forged = await world.client.get(link[:-3] + "abc")
    assert forged.status_code == 404 and "Invalid link" in forged.text
    # Every state change was published.
    assert await world.published(message["id"]) == [
        "kehu.message.queued.v1",
        "kehu.message.sent.v1",
    ]


async def test_the_survey_page_refuses_an_empty_answer_and_an_expired_link(noon: World) -> None:
    world = noon
    customer = await world.customer(language="zh-CN")
    await invite(world, customer["id"])
    message = await world.message_in(customer["id"], "sent", "survey_invitation")
    [mail] = await world.mail_of(message["id"])
    assert mail["subject"] == "请告诉我们您的体验"
    link = link_in(mail["body"], "/s/")

    empty = await world.client.post(link, data={"comment": "nothing rated"})
    assert empty.status_code == 422 and "请至少回答一个评分问题" in empty.text

    world.clock.advance(days=world.settings.survey_link_ttl_days + 1)
    expired = await world.client.get(link)
    assert expired.status_code == 410 and "链接已过期" in expired.text
    answered = await world.client.post(link, data={"overall": "5"})
    assert answered.status_code == 410


async def test_withdrawn_marketing_consent_suppresses_the_birthday_greeting_not_a_case_notice(
    noon: World,
) -> None:
    world = noon
    day = world.clock.now().astimezone(SHANGHAI).date()  # the customer's date, not UTC's
    customer = await world.customer(
        important_dates=[{"kind": "birthday", "month": day.month, "day": day.day}]
    )
    await world.consent(customer["id"], "marketing_email", True)
    await world.consent(customer["id"], "marketing_email", False)

    from services.outreach import service
    from shared.context import RequestContext

    async with world.outreach.state.sessions.begin() as session:
        await service.greetings_due(RequestContext.system(session, world.outreach.state))
    greeting = await world.message_in(customer["id"], "suppressed", "birthday_greeting")
    assert greeting["purpose"] == "marketing"
    assert greeting["reason"] == "consent_withdrawn: marketing_email"
    assert await world.mail_of(greeting["id"]) == []
    # Asked again the same day, nothing new is queued.
    async with world.outreach.state.sessions.begin() as session:
        assert (
            await service.greetings_due(RequestContext.system(session, world.outreach.state)) == 0
        )

    # The case notice is transactional: it goes out.
    complaint = await world.client.post(
        world.urls["complaints"] + "/complaints",
        json={
            "customer_id": customer["id"],
            "channel": "email",
            "subject": "Parcel damaged",
            "description": "The box was crushed.",
            "category": "delivery",
            "severity": "medium",
        },
        headers=ADMIN,
    )
    assert complaint.status_code == 201, complaint.text
    moved = await world.client.post(
        f"{world.urls['complaints']}/complaints/{complaint.json()['id']}/transitions",
        json={"to_status": "acknowledged"},
        headers=ADMIN,
    )
    assert moved.status_code == 200, moved.text
    notice = await world.message_in(customer["id"], "sent", "case_acknowledged")
    [mail] = await world.mail_of(notice["id"])
    case = await world.client.get(
        f"{world.urls['complaints']}/cases/{complaint.json()['id']}", headers=ADMIN
    )
    assert case.json()["reference"] in mail["subject"]  # the desk's own number, e.g. CP-2026-…
    suppressed = await world.messages(customer["id"], status="suppressed")
    assert [m["template_key"] for m in suppressed] == ["birthday_greeting"]


async def test_a_marketing_email_carries_an_unsubscribe_link_that_withdraws_consent_in_profiles(
    noon: World,
) -> None:
    world = noon
    customer = await world.customer()
    await world.consent(customer["id"], "marketing_email", True)
    response = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": customer["id"],
            "template": "festival_greeting",
            "purpose": "marketing",
            "channel": "email",
            "variables": {"festival_zh": "春节", "festival_en": "Spring Festival"},
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    message = await world.message_in(customer["id"], "sent", "festival_greeting")
    [mail] = await world.mail_of(message["id"])
    assert "List-Unsubscribe:" in mail["raw"]
    link = link_in(mail["body"], "/u/")

    page = await world.client.get(link)
    assert page.status_code == 200 and "marketing_email" in page.text
    done = await world.client.post(link, data={"lang": "en"})
    assert done.status_code == 200 and "unsubscribed" in done.text.lower()

    consents = await world.client.get(
        f"{world.urls['profiles']}/customers/{customer['id']}/consents", headers=ADMIN
    )
    current = {c["purpose"]: c for c in consents.json()["current"]}
    assert current["marketing_email"]["granted"] is False
    assert current["marketing_email"]["source"] == "unsubscribe_link"
    assert current["marketing_email"]["recorded_by"] == "outreach"

    again = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": customer["id"],
            "template": "festival_greeting",
            "purpose": "marketing",
            "channel": "email",
        },
        headers=ADMIN,
    )
    assert again.status_code == 201
    await eventually(
        lambda: _status(world, again.json()["id"], "suppressed"), timeout=60, interval=0.2
    )


async def _status(world: World, message_id: str, status: str) -> bool:
    return (await world.message(message_id))["status"] == status


async def test_an_unsubscribe_supersedes_a_grant_stamped_later_by_another_clock(
    noon: World,
) -> None:
    """The unsubscribe link is a decision taken here and now: it replaces a grant whose stamp
    (another service's clock) is later than outreach's own, keeps that later stamp, and an
    older grant arriving afterwards cannot undo it. A projected event never supersedes."""
    world = noon
    customer_id = uuid.uuid4()
    now = shanghai(12)
    later = now + timedelta(minutes=5)  # profiles' clock runs ahead of outreach's
    engine = world.outreach.state.engine

    async def stored() -> tuple[bool, str, datetime]:
        async with AsyncSession(engine) as session:
            row = await repository.consent(session, customer_id, "marketing_email")
            assert row is not None
            return row.granted, row.source, row.occurred_at

    async def record(granted: bool, source: str, at: datetime, **kw: Any) -> None:
        async with AsyncSession(engine) as session, session.begin():
            await repository.ensure_customer(session, customer_id)
            await repository.set_consent(
                session, customer_id, "marketing_email", granted, source, at, **kw
            )

    await record(True, "profiles", later)
    # A projected withdrawal stamped before the grant is an older change: ignored.
    await record(False, "profiles", now)
    assert await stored() == (True, "profiles", later)
    # The unsubscribe link, stamped by outreach's clock before the grant, still wins.
    await record(False, "unsubscribe_link", now, supersede=True)
    assert await stored() == (False, "unsubscribe_link", later)
    # A grant from between the two clocks arriving late does not bring consent back.
    await record(True, "profiles", now + timedelta(minutes=2))
    assert await stored() == (False, "unsubscribe_link", later)


async def test_quiet_hours_defer_a_non_urgent_message_until_morning_in_the_customers_zone(
    noon: World,
) -> None:
    world = noon
    customer = await world.customer()
    world.clock.set(shanghai(22, 30))
    body = {
        "customer_id": customer["id"],
        "template": "case_resolved",
        "purpose": "transactional",
        "variables": {"reference": "C-QUIET", "outcome": "refund issued"},
    }
    calm = await world.client.post(world.urls["outreach"] + "/messages", json=body, headers=ADMIN)
    urgent = await world.client.post(
        world.urls["outreach"] + "/messages", json={**body, "urgent": True}, headers=ADMIN
    )
    assert calm.status_code == urgent.status_code == 201
    await eventually(lambda: _status(world, calm.json()["id"], "deferred"), timeout=60)
    await eventually(lambda: _status(world, urgent.json()["id"], "sent"), timeout=60)
    deferred = await world.message(calm.json()["id"])
    assert deferred["reason"] == "quiet_hours"
    assert deferred["next_attempt_at"].startswith(shanghai(9, days=1).strftime("%Y-%m-%dT%H:%M"))
    assert await world.mail_of(calm.json()["id"]) == []

    world.clock.set(shanghai(8, 59, days=1))
    await asyncio.sleep(1)  # a few dispatcher passes: still quiet
    assert (await world.message(calm.json()["id"]))["status"] == "deferred"
    world.clock.set(shanghai(9, 1, days=1))
    await eventually(lambda: _status(world, calm.json()["id"], "sent"), timeout=60)
    [mail] = await world.mail_of(calm.json()["id"])
    assert "refund issued" in mail["body"]
    history = [
        (s["status"], s["reason"]) for s in (await world.message(calm.json()["id"]))["history"]
    ]
    assert history == [("queued", None), ("deferred", "quiet_hours"), ("sent", None)]


async def test_a_duplicate_event_sends_nothing_twice(noon: World) -> None:
    world = noon
    customer = await world.customer()
    invitation = SurveyInvited(
        customer_id=uuid.UUID(customer["id"]),
        occurred_at=world.clock.now(),
        invitation_id=uuid.uuid4(),
    )
    first = await world.publish(invitation)
    await world.publish(invitation, event_id=first)  # redelivered as is
    await world.publish(invitation)  # the same invitation under another event id
    message = await world.message_in(customer["id"], "sent", "survey_invitation")

    marker = SurveyInvited(
        customer_id=uuid.UUID(customer["id"]),
        occurred_at=world.clock.now(),
        invitation_id=uuid.uuid4(),
        channel="email",
    )
    await world.publish(marker)  # published after the duplicates: once it is in, they are too

    async def both() -> bool:
        return len(await world.messages(customer["id"], status="sent")) == 2

    await eventually(both, timeout=90, interval=0.2)
    invitations = await world.messages(customer["id"])
    assert len(invitations) == 2
    assert len(await world.mail_of(message["id"])) == 1


async def test_a_provider_answering_500_is_retried_and_a_signed_bounce_is_recorded(
    noon: World,
) -> None:
    world = noon
    customer = await world.customer(phone="+86 139 1234 5678")
    world.provider.answers.extend([500])
    response = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": customer["id"],
            "template": "case_acknowledged",
            "purpose": "transactional",
            "channel": "sms",
            "variables": {"reference": "C-SMS1"},
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    message_id = response.json()["id"]
    await eventually(lambda: _status(world, message_id, "deferred"), timeout=60)
    deferred = await world.message(message_id)
    assert deferred["reason"] == "provider_error: sms provider answered 500"
    assert deferred["attempts"] == 1

    world.clock.advance(seconds=world.settings.retry_base_s + 1)
    await eventually(lambda: _status(world, message_id, "sent"), timeout=60)
    sent_requests = [r for r in world.provider.received if r["client_ref"] == message_id]
    assert len(sent_requests) == 2 and all(r["signed"] for r in sent_requests)
    assert sent_requests[-1]["to"] == "+8613912345678"
    assert "C-SMS1" in sent_requests[-1]["text"]

    unsigned = await world.client.post(
        world.urls["outreach"] + "/callbacks/sms",
        json={"client_ref": message_id, "status": "bounced"},
    )
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"].startswith("application/problem+json")
    forged = await world.callback(
        "sms", {"client_ref": message_id, "status": "bounced"}, "not-the-secret"
    )
    assert forged.status_code == 401

    sent = await world.message(message_id)
    report = {"id": sent_requests[-1]["reference"], "status": "bounced", "reason": "number unknown"}
    bounce = await world.callback("sms", report, SMS_CALLBACK_SECRET)
    assert bounce.status_code == 200, bounce.text
    again = await world.callback("sms", report, SMS_CALLBACK_SECRET)  # a repeated report
    assert again.status_code == 200
    bounced = await world.message(message_id)
    assert bounced["status"] == "bounced" and bounced["reason"] == "bounced: number unknown"
    assert [s["status"] for s in bounced["history"]] == ["queued", "deferred", "sent", "bounced"]
    assert sent["status"] == "sent"
    assert await world.published(message_id) == [
        "kehu.message.queued.v1",
        "kehu.message.deferred.v1",
        "kehu.message.sent.v1",
        "kehu.message.bounced.v1",
    ]
