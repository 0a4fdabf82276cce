"""Point 4: SLA warnings and breaches exactly once, pauses, tiers, business hours (the clock's
arithmetic alone: tests/unit/test_sla_clock.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi import FastAPI

from services.complaints.models import CustomerTier
from tests.complaints.conftest import ADMIN, events_of, file_complaint, make_app, matrix, walk
from tests.helpers import eventually, serve


async def test_two_schedulers_publish_exactly_one_warning_and_one_breach_per_target() -> None:
    short = {"sla_matrix": matrix(first_response_s=2, resolution_s=3)}
    first, second = make_app(**short), make_app(**short)
    async for client in serve(first):
        async for _ in serve(second):
            ids = [(await file_complaint(client))["id"] for _ in range(8)]

            async def all_breached(ids: list[str] = ids) -> bool:
                for complaint_id in ids:
                    types = [t for t, _ in await events_of(first, complaint_id)]
                    if types.count("complaint.sla_breached") < 2:
                        return False
                return True

            await eventually(all_breached, timeout=20, interval=0.3)
            await asyncio.sleep(1.0)  # several more passes of both schedulers

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
    app = make_app(sla_matrix=matrix(first_response_s=60, resolution_s=4))
    async for client in serve(app):
        c = await file_complaint(client)
        started = time.monotonic()
        await walk(client, c["id"], "acknowledged", "investigating", "waiting_on_customer")
        url = f"/complaints/{c['id']}"
        paused = (await client.get(url, headers=ADMIN)).json()["sla"]
        await asyncio.sleep(3.0)
        still = (await client.get(url, headers=ADMIN)).json()["sla"]
        assert paused["paused"] is True
        assert still["remaining_seconds"] == paused["remaining_seconds"]  # the clock stood still

        resumed = await walk(client, c["id"], "investigating")
        assert resumed["sla"]["paused"] is False and resumed["sla"]["paused_seconds"] >= 3
        received = datetime.fromisoformat(resumed["received_at"])
        due = datetime.fromisoformat(resumed["sla"]["resolution_due_at"])
        assert (due - received).total_seconds() >= 4 + 3

        # Past the unpaused 4 s target: without the pause this would have breached by now.
        await asyncio.sleep(max(0.0, 4.8 - (time.monotonic() - started)))
        types = [t for t, _ in await events_of(app, c["id"])]
        assert "complaint.sla_breached" not in types
        assert "complaint.sla_warning" not in types

        resolved = await walk(client, c["id"], "resolved")
        assert resolved["sla"]["resolution_breached"] is False
        event = next(d for t, d in await events_of(app, c["id"]) if t == "complaint.resolved")
        assert event["resolution_met"] is True
        assert event["resolution_seconds"] < 4


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
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    app = make_app(
        sla_matrix=matrix(first_response_s=3600, resolution_s=2 * 3600),
        business_hours_enabled=True,
        business_timezone="UTC",
        business_weekdays=[tomorrow.weekday()],  # today is closed
    )
    async for client in serve(app):
        c = await file_complaint(client)
        due = datetime.fromisoformat(c["sla"]["first_response_due_at"])
        assert due == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, tzinfo=UTC)
        resolution_due = datetime.fromisoformat(c["sla"]["resolution_due_at"])
        assert resolution_due == due + timedelta(hours=1)
        assert c["sla"]["remaining_seconds"] == 3600  # no business time passes today
