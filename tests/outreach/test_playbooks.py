"""Playbooks and the rest of the API on the real stack: win-back, loyalty notices read by name,
versioned templates with previews, preferences with If-Match and time zones, masking and audit,
GDPR export and erasure."""

from __future__ import annotations

import uuid
from typing import Any

from shared.contracts.analytics import CustomerChurnRiskChanged
from shared.events.envelope import CloudEvent, to_kafka
from tests.helpers import eventually
from tests.outreach.conftest import ADMIN, World, headers, shanghai


async def followups_of(world: World, customer_id: str) -> list[dict[str, Any]]:
    response = await world.client.get(
        world.urls["interactions"] + "/followups",
        params={"customer_id": customer_id},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def churn(customer_id: str, level: str, score: int, world: World) -> CustomerChurnRiskChanged:
    return CustomerChurnRiskChanged(
        customer_id=uuid.UUID(customer_id),
        occurred_at=world.clock.now(),
        score=score,
        level=level,  # type: ignore[arg-type]
        reasons=["no purchase in 2.5x the usual interval"],
    )


async def test_churn_risk_becoming_high_starts_the_win_back_playbook_once(noon: World) -> None:
    world = noon
    owner = f"owner-{uuid.uuid4().hex[:6]}"
    customer = await world.customer(owner_id=owner)
    await world.publish(churn(customer["id"], "high", 82, world))

    async def tasked() -> bool:
        return len(await followups_of(world, customer["id"])) == 1

    await eventually(tasked, timeout=90, interval=0.3)
    [followup] = await followups_of(world, customer["id"])
    assert followup["assignee_id"] == owner and followup["kind"] == "care"
    assert "Win-back" in followup["note"]
    # The win-back message is marketing: without consent it is suppressed, and says why.
    winback = await world.message_in(customer["id"], "suppressed", "winback")
    assert winback["reason"] == "no_consent: marketing_email"

    # Still high (another score): no second playbook. Down and up again: a new one.
    await world.publish(churn(customer["id"], "high", 90, world))
    await world.publish(churn(customer["id"], "medium", 50, world))
    await world.publish(churn(customer["id"], "high", 85, world))

    async def twice() -> bool:
        return len(await followups_of(world, customer["id"])) == 2

    await eventually(twice, timeout=90, interval=0.3)
    winbacks = [m for m in await world.messages(customer["id"]) if m["template_key"] == "winback"]
    assert len(winbacks) == 2


async def test_a_loyalty_level_change_is_noticed_by_event_name(noon: World) -> None:
    world = noon
    customer = await world.customer()
    event = CloudEvent(
        source="/kehu/loyalty",
        type="kehu.loyalty.level_changed.v1",
        subject=customer["id"],
        partitionkey=customer["id"],
        data={"customer_id": customer["id"], "level": "gold", "previous_level": "silver"},
    )
    key, value, kafka_headers = to_kafka(event)
    from aiokafka import AIOKafkaProducer

    from shared.settings import ServiceSettings

    producer = AIOKafkaProducer(bootstrap_servers=ServiceSettings().kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait("kehu.loyalty", value, key=key, headers=kafka_headers)
    finally:
        await producer.stop()
    notice = await world.message_in(customer["id"], "sent", "loyalty_level_changed")
    assert notice["purpose"] == "transactional"
    [mail] = await world.mail_of(notice["id"])
    assert mail["subject"] == "Your membership level is now gold"


async def test_templates_are_versioned_previewed_and_sandboxed(noon: World) -> None:
    world = noon
    base = world.urls["outreach"]
    key = f"order_shipped_{uuid.uuid4().hex[:6]}"
    first = await world.client.put(
        f"{base}/templates/{key}/en",
        json={
            "purpose": "transactional",
            "subject": "Order {{ order }} shipped",
            "body": "Dear {{ name }}, order {{ order }} is on its way.",
        },
        headers=ADMIN,
    )
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    second = await world.client.put(
        f"{base}/templates/{key}/en",
        json={"subject": "Shipped: {{ order }}", "body": "Hi {{ name }}, {{ order }} shipped."},
        headers=ADMIN,
    )
    assert second.json()["version"] == 2 and second.json()["purpose"] == "transactional"
    versions = await world.client.get(f"{base}/templates/{key}", headers=ADMIN)
    assert [v["version"] for v in versions.json()] == [2, 1]

    preview = await world.client.post(
        f"{base}/templates/{key}/preview",
        json={"locale": "en", "variables": {"order": "SO-1", "name": "Li"}},
        headers=ADMIN,
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["subject"] == "Shipped: SO-1" and preview.json()["version"] == 2
    old = await world.client.post(
        f"{base}/templates/{key}/preview",
        json={"locale": "en", "version": 1, "variables": {"order": "SO-1"}},
        headers=ADMIN,
    )
    assert old.json()["subject"] == "Order SO-1 shipped"
    builtin = await world.client.post(
        f"{base}/templates/case_resolved/preview", json={"locale": "zh-CN"}, headers=ADMIN
    )
    assert "C-7F3A21" in builtin.json()["subject"]

    broken = await world.client.put(
        f"{base}/templates/{key}/en",
        json={"subject": "{% if %}", "body": "x"},
        headers=ADMIN,
    )
    assert broken.status_code == 422 and broken.json()["type"].endswith("invalid-template")
    escape = await world.client.post(
        f"{base}/templates/{key}/preview",
        json={"draft": {"subject": "x", "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}},
        headers=ADMIN,
    )
    assert escape.status_code == 422, escape.text
    marketing = await world.client.put(
        f"{base}/templates/birthday_greeting/en",
        json={"purpose": "transactional", "subject": "x", "body": "y"},
        headers=ADMIN,
    )
    assert marketing.status_code == 422  # a built-in key keeps its purpose

    customer = await world.customer()
    message = await world.client.post(
        f"{base}/messages",
        json={
            "customer_id": customer["id"],
            "template": key,
            "purpose": "transactional",
            "variables": {"order": "SO-77"},
        },
        headers={**ADMIN, "Idempotency-Key": f"ship-{key}"},
    )
    assert message.status_code == 201, message.text
    retry = await world.client.post(
        f"{base}/messages",
        json={
            "customer_id": customer["id"],
            "template": key,
            "purpose": "transactional",
            "variables": {"order": "SO-77"},
        },
        headers={**ADMIN, "Idempotency-Key": f"ship-{key}"},
    )
    assert retry.json()["id"] == message.json()["id"]
    sent = await world.message_in(customer["id"], "sent", key)
    assert sent["template_version"] == 2 and sent["subject"] == "Shipped: SO-77"
    assert len(await world.messages(customer["id"])) == 1

    wrong = await world.client.post(
        f"{base}/messages",
        json={"customer_id": customer["id"], "template": key, "purpose": "marketing"},
        headers=ADMIN,
    )
    assert wrong.status_code == 422 and wrong.json()["type"].endswith("purpose-mismatch")
    unknown = await world.client.post(
        f"{base}/messages",
        json={
            "customer_id": customer["id"],
            "template": "no_such_template",
            "purpose": "marketing",
        },
        headers=ADMIN,
    )
    assert unknown.status_code == 422 and unknown.json()["type"].endswith("unknown-template")


async def test_quiet_hours_follow_the_time_zone_set_in_preferences(noon: World) -> None:
    world = noon
    base = world.urls["outreach"]
    customer = await world.customer()
    url = f"{base}/customers/{customer['id']}/preferences"
    current = await world.client.get(url, headers=ADMIN)
    assert current.status_code == 200, current.text
    assert current.json()["language"] == "en"
    without = await world.client.put(url, json={"timezone": "America/Los_Angeles"}, headers=ADMIN)
    assert without.status_code == 428
    stale = await world.client.put(
        url, json={"timezone": "America/Los_Angeles"}, headers={**ADMIN, "If-Match": '"999"'}
    )
    assert stale.status_code == 412
    bad = await world.client.put(
        url,
        json={"timezone": "Mars/Olympus"},
        headers={**ADMIN, "If-Match": current.headers["ETag"]},
    )
    assert bad.status_code == 422
    done = await world.client.put(
        url,
        json={"timezone": "America/Los_Angeles"},
        headers={**ADMIN, "If-Match": current.headers["ETag"]},
    )
    assert done.status_code == 200 and done.json()["timezone"] == "America/Los_Angeles"

    # 14:00 in Shanghai is 22:00 (23:00 in summer) in Los Angeles: quiet there, not here.
    world.clock.set(shanghai(14))
    response = await world.client.post(
        f"{base}/messages",
        json={
            "customer_id": customer["id"],
            "template": "case_acknowledged",
            "purpose": "transactional",
            "variables": {"reference": "C-LA"},
        },
        headers=ADMIN,
    )
    deferred = await world.message_in(customer["id"], "deferred", "case_acknowledged")
    assert deferred["id"] == response.json()["id"] and deferred["reason"] == "quiet_hours"


async def test_recipients_are_masked_without_pii_read_and_unmasked_reads_audited(
    noon: World,
) -> None:
    world = noon
    customer = await world.customer()
    response = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": customer["id"],
            "template": "case_acknowledged",
            "purpose": "transactional",
            "variables": {"reference": "C-MASK"},
        },
        headers=ADMIN,
    )
    assert response.status_code == 201
    await world.message_in(customer["id"], "sent", "case_acknowledged")
    analyst = await world.client.get(
        world.urls["outreach"] + "/messages",
        params={"customer_id": customer["id"]},
        headers=headers("analyst"),
    )
    [masked] = analyst.json()["items"]
    assert masked["recipient"] != customer["email"] and "***" in masked["recipient"]
    assert masked["subject"] == "[redacted]" and masked["body"] == "[redacted]"
    audit = await world.client.get(
        world.urls["outreach"] + "/audit",
        params={"customer_id": customer["id"], "action": "read_pii"},
        headers=ADMIN,
    )
    assert audit.status_code == 200
    assert any(e["actor"] == "outreach-tests" for e in audit.json()["items"])
    forbidden = await world.client.post(
        world.urls["outreach"] + "/messages", json={}, headers=headers("analyst")
    )
    assert forbidden.status_code == 403


async def test_gdpr_export_holds_the_messages_and_erasure_scrubs_them(noon: World) -> None:
    world = noon
    customer = await world.customer()
    cid = customer["id"]
    await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": cid,
            "template": "case_acknowledged",
            "purpose": "transactional",
            "variables": {"reference": "C-GDPR"},
        },
        headers=ADMIN,
    )
    sent = await world.message_in(cid, "sent", "case_acknowledged")
    world.clock.set(shanghai(23))  # a message waiting for the morning when the erasure comes
    waiting = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={"customer_id": cid, "template": "case_acknowledged", "purpose": "transactional"},
        headers=ADMIN,
    )
    await world.message_in(cid, "deferred", "case_acknowledged")

    export = await world.client.get(
        f"{world.urls['outreach']}/customers/{cid}/export", headers=ADMIN
    )
    assert export.status_code == 200 and export.json()["status"] == "ok"
    assert customer["email"] in export.text and len(export.json()["data"]["messages"]) == 2
    whole = await world.client.get(
        f"{world.urls['profiles']}/customers/{cid}/gdpr-export", headers=ADMIN
    )
    sections = {s["service"]: s for s in whole.json()["services"]}
    assert sections["outreach"]["status"] == "ok", sections["outreach"]

    erased = await world.client.post(
        f"{world.urls['profiles']}/customers/{cid}/erasure", headers=ADMIN
    )
    assert erased.status_code == 200, erased.text

    async def scrubbed() -> bool:
        report = await world.client.get(
            f"{world.urls['outreach']}/customers/{cid}/erasure", headers=ADMIN
        )
        return report.json()["status"] == "erased"

    await eventually(scrubbed, timeout=90, interval=0.3)
    after = await world.message(sent["id"])
    assert after["recipient"] is None and after["body"] is None
    assert after["status"] == "sent"  # the delivery facts stay
    suppressed = await world.message(waiting.json()["id"])
    assert (suppressed["status"], suppressed["reason"]) == ("suppressed", "customer_erased")
    assert await world.mail_of(sent["id"]) == []
    export = await world.client.get(
        f"{world.urls['outreach']}/customers/{cid}/export", headers=ADMIN
    )
    assert customer["email"] not in export.text
    refused = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={"customer_id": cid, "template": "case_acknowledged", "purpose": "transactional"},
        headers=ADMIN,
    )
    assert refused.status_code == 409
