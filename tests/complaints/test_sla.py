"""Point 4: SLA warnings and breaches exactly once, pauses, tiers, business hours (the clock's
arithmetic alone: tests/unit/test_sla_clock.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from fastapi import FastAPI

from services.complaints.models import CustomerTier
from tests.complaints.conftest import (
    ADMIN,
    check_sla,
    clocked,
    events_of,
    file_complaint,
    make_app,
    matrix,
    walk,
)
from tests.helpers import eventually, serve


async def test_two_schedulers_publish_exactly_one_warning_and_one_breach_per_target() -> None:
    hour = 3600
    short = {"sla_matrix": matrix(first_response_s=hour, resolution_s=4 * hour)}
    first, clock = clocked(**short)
    second = make_app(**short)
    second.state.clock = clock  # two replicas, one time
    start = clock.now()
    async for client in serve(first):
        async for _ in serve(second):
            ids = [(await file_complaint(client))["id"] for _ in range(8)]

            async def passes() -> None:
                """Both replicas' schedulers at once, on top of their periodic passes."""
                await asyncio.gather(*(check_sla(app) for app in (first, second, first, second)))

            # Past each warning and each deadline in turn: 80 % and 100 % of 1 h, then of 4 h.
            for hours in (0.85, 1.05, 3.3, 4.05):
                clock.set(start + timedelta(hours=hours))
                await passes()

            async def all_breached(ids: list[str] = ids) -> bool:
                for complaint_id in ids:
                    types = [t for t, _ in await events_of(first, complaint_id)]
                    if types.count("complaint.sla_breached") < 2:
                        return False
                return True

            await eventually(all_breached, timeout=20, interval=0.3)
            clock.advance(hours=1)
            await passes()

            for complaint_id in ids:
                events = await events_of(first, complaint_id)
                sla = Counter((t, d["target"]) for t, d in events if t.startswith("complaint.sla_"))
                assert sla == {
                    ("complaint.sla_warning", "first_response"): 1,
                    ("complaint.sla_warning", "resolution"): 1,
                    ("complaint.sla_breached", "first_response"): 1,
                    ("complaint.sla_breached", "resolution"): 1,
                }
                escalations = [d for t, d in events if t == "complaint.escalated"]
                assert [(e["reason"], e["level"]) for e in escalations] == [
                    ("sla_breach", 1),
                    ("sla_breach", 2),
                ]
                body = (await client.get(f"/complaints/{complaint_id}", headers=ADMIN)).json()
                assert body["escalation_level"] == 2
                assert body["sla"]["status"] == "breached"
                assert body["sla"]["first_response_breached"] is True
                assert body["sla"]["remaining_seconds"] < 0

            acknowledged = await walk(client, ids[0], "acknowledged")
            assert acknowledged["sla"]["status"] == "breached"
            ack = [d for t, d in await events_of(first, ids[0]) if t == "complaint.acknowledged"]
            assert ack[0]["first_response_met"] is False


async def test_time_waiting_on_the_customer_does_not_count_against_the_sla() -> None:
    hour = 3600
    app, clock = clocked(sla_matrix=matrix(first_response_s=hour, resolution_s=4 * hour))
    async for client in serve(app):
        c = await file_complaint(client)
        await walk(client, c["id"], "acknowledged", "investigating", "waiting_on_customer")
        url = f"/complaints/{c['id']}"
        paused = (await client.get(url, headers=ADMIN)).json()["sla"]
        clock.advance(hours=3)
        still = (await client.get(url, headers=ADMIN)).json()["sla"]
        assert paused["paused"] is True
        assert still["remaining_seconds"] == paused["remaining_seconds"]  # the clock stood still

        resumed = await walk(client, c["id"], "investigating")
        assert resumed["sla"]["paused"] is False
        assert resumed["sla"]["paused_seconds"] == 3 * hour
        received = datetime.fromisoformat(resumed["received_at"])
        due = datetime.fromisoformat(resumed["sla"]["resolution_due_at"])
        assert (due - received).total_seconds() == (4 + 3) * hour

        # 4.8 h after receipt: without the pause this would have breached (and warned) by now.
        clock.advance(hours=1.8)
        await check_sla(app)
        types = [t for t, _ in await events_of(app, c["id"])]
        assert "complaint.sla_breached" not in types
        assert "complaint.sla_warning" not in types

        resolved = await walk(client, c["id"], "resolved")
        assert resolved["sla"]["resolution_breached"] is False
        event = next(d for t, d in await events_of(app, c["id"]) if t == "complaint.resolved")
        assert event["resolution_met"] is True
        assert event["resolution_seconds"] == int(1.8 * hour)


async def test_a_tier_customers_get_tighter_targets(app: FastAPI) -> None:
    tiered = make_app(sla_matrix=matrix(first_response_s=100, resolution_s=1000, a_factor=0.5))
    a_customer = uuid.uuid4()
    async with app.state.engine.begin() as conn:
        await conn.execute(
            sa.insert(CustomerTier).values(
                customer_id=a_customer, tier="A", as_of=datetime.now(UTC)
            )
        )
    async for client in serve(tiered):
        a = await file_complaint(client, customer_id=a_customer)
        c = await file_complaint(client)
        assert (a["tier"], c["tier"]) == ("A", "C")
        assert a["sla"]["first_response_target_s"] == 50
        assert a["sla"]["resolution_target_s"] == 500
        assert c["sla"]["first_response_target_s"] == 100
        assert a["sla"]["first_response_due_at"] < c["sla"]["first_response_due_at"]


async def test_with_the_business_calendar_deadlines_count_only_business_hours() -> None:
    today = date(2026, 11, 18)
    tomorrow = today + timedelta(days=1)
    app, clock = clocked(
        sla_matrix=matrix(first_response_s=3600, resolution_s=2 * 3600),
        business_hours_enabled=True,
        business_timezone="UTC",
        business_weekdays=[tomorrow.weekday()],  # today is closed
    )
    clock.set(datetime(today.year, today.month, today.day, 12, tzinfo=UTC))
    async for client in serve(app):
        c = await file_complaint(client)
        due = datetime.fromisoformat(c["sla"]["first_response_due_at"])
        assert due == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, tzinfo=UTC)
        resolution_due = datetime.fromisoformat(c["sla"]["resolution_due_at"])
        assert resolution_due == due + timedelta(hours=1)
        assert c["sla"]["remaining_seconds"] == 3600  # no business time passes today
