"""Marketing rules on the real stack: the frequency cap, festival greetings in the customer's
own time zone and quiet hours, the win-back message with a loyalty coupon, WeChat."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from services.outreach import service
from services.outreach.config import Festival
from shared.context import RequestContext
from shared.contracts.analytics import CustomerChurnRiskChanged
from tests.helpers import eventually
from tests.outreach.conftest import ADMIN, World


@pytest.fixture
async def restored(noon: World) -> AsyncIterator[World]:
    """The world whose settings a test may change; put back afterwards."""
    saved = dict(vars(noon.settings))
    yield noon
    for name, value in saved.items():
        setattr(noon.settings, name, value)


async def marketing(world: World, customer_id: str, n: int) -> str:
    response = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": customer_id,
            "template": "festival_greeting",
            "purpose": "marketing",
            "channel": "email",
            "variables": {"festival_zh": f"节日{n}", "festival_en": f"Day {n}"},
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


async def settled(world: World, message_id: str, status: str) -> None:
    async def reached() -> bool:
        return (await world.message(message_id))["status"] == status

    await eventually(reached, timeout=60, interval=0.2)


async def test_the_frequency_cap_suppresses_marketing_beyond_the_limit(restored: World) -> None:
    world = restored
    world.settings.marketing_cap = 2
    customer = await world.customer()
    await world.consent(customer["id"], "marketing_email", True)
    for n in range(3):
        message_id = await marketing(world, customer["id"], n)
        await settled(world, message_id, "sent" if n < 2 else "suppressed")
    [capped] = await world.messages(customer["id"], status="suppressed")
    assert capped["reason"] == "frequency_cap: 2 marketing messages in 7 days"
    # Transactional messages are not capped.
    notice = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": customer["id"],
            "template": "case_acknowledged",
            "purpose": "transactional",
        },
        headers=ADMIN,
    )
    assert notice.status_code == 201
    await world.message_in(customer["id"], "sent", "case_acknowledged")
    # A week later the window has room again.
    world.clock.advance(days=7, minutes=1)
    await settled(world, await marketing(world, customer["id"], 9), "sent")


async def test_a_festival_greeting_follows_the_customers_date_and_quiet_hours(
    restored: World,
) -> None:
    """In Kiritimati (UTC+14) the festival day has begun while it is still the eve in Shanghai:
    only customers whose own date it is are greeted, after their quiet hours."""
    world = restored
    kiritimati = ZoneInfo("Pacific/Kiritimati")
    customer = await world.customer(language="zh-CN")
    await world.consent(customer["id"], "marketing_email", True)
    url = f"{world.urls['outreach']}/customers/{customer['id']}/preferences"
    etag = (await world.client.get(url, headers=ADMIN)).headers["ETag"]
    put = await world.client.put(
        url, json={"timezone": "Pacific/Kiritimati"}, headers={**ADMIN, "If-Match": etag}
    )
    assert put.status_code == 200, put.text
    now = world.clock.now()  # noon in Shanghai = 18:00 in Kiritimati; move to 02:00 there
    there = now.astimezone(kiritimati)
    world.clock.set((there + timedelta(hours=8)).astimezone(now.tzinfo))
    festival_day = world.clock.now().astimezone(kiritimati).date()
    assert world.clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date() < festival_day
    key = f"test_festival_{uuid.uuid4().hex[:6]}"
    world.settings.festivals = [
        Festival(key=key, date=festival_day, name_zh="中秋节", name_en="Mid-Autumn Festival")
    ]
    async with world.outreach.state.sessions.begin() as session:
        await service.greetings_due(RequestContext.system(session, world.outreach.state))

    greeting = await world.message_in(customer["id"], "deferred", "festival_greeting")
    assert greeting["reason"] == "quiet_hours"
    wake = greeting["next_attempt_at"]
    assert wake.startswith(f"{festival_day - timedelta(days=1)}T19:00")  # 09:00 in Kiritimati
    async with world.outreach.state.engine.connect() as conn:
        others = await conn.scalar(
            sa.text("SELECT count(*) FROM messages WHERE trigger = :t"), {"t": f"festival:{key}"}
        )
    assert others == 1, "only the customer whose date it is was greeted"

    world.clock.set(world.clock.now() + timedelta(hours=7, minutes=5))
    sent = await world.message_in(customer["id"], "sent", "festival_greeting")
    [mail] = await world.mail_of(sent["id"])
    assert mail["subject"] == "中秋节快乐"
    assert "/u/" in mail["body"]  # marketing: the unsubscribe link


async def test_the_win_back_message_carries_a_loyalty_coupon_when_switched_on(
    restored: World,
) -> None:
    world = restored
    world.settings.winback_coupon = True
    customer = await world.customer(owner_id="owner-coupon")
    await world.consent(customer["id"], "marketing_email", True)
    await world.publish(
        CustomerChurnRiskChanged(
            customer_id=uuid.UUID(customer["id"]),
            occurred_at=world.clock.now(),
            score=88,
            level="high",
            reasons=["no purchase in 3x the usual interval"],
        )
    )
    sent = await world.message_in(customer["id"], "sent", "winback")
    [coupon] = [c for c in world.provider.coupons if c["customer_id"] == customer["id"]]
    assert coupon["reason"] == "winback" and coupon["idempotency_key"] == f"coupon-{sent['id']}"
    [mail] = await world.mail_of(sent["id"])
    assert "coupon WB-" in mail["body"]


async def test_wechat_goes_to_the_openid_through_the_signed_provider(noon: World) -> None:
    world = noon
    openid = f"o{uuid.uuid4().hex[:20]}"
    customer = await world.customer(custom_attributes={"wechat_openid": openid})
    response = await world.client.post(
        world.urls["outreach"] + "/messages",
        json={
            "customer_id": customer["id"],
            "template": "case_resolved",
            "purpose": "transactional",
            "channel": "wechat",
            "variables": {"reference": "C-WX"},
        },
        headers=ADMIN,
    )
    assert response.status_code == 201
    sent = await world.message_in(customer["id"], "sent", "case_resolved")
    assert sent["channel"] == "wechat" and sent["recipient"] == openid
    [request] = [r for r in world.provider.received if r["client_ref"] == sent["id"]]
    assert request["channel"] == "wechat" and request["signed"] and "C-WX" in request["text"]
