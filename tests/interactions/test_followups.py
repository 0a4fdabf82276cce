"""Follow-ups: schedule, complete with the interaction, agenda, overdue exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from services.interactions.jobs import overdue_job
from services.interactions.models import Followup, outbox
from shared.context import SYSTEM_CLOCK, ManualClock
from shared.db import create_engine, session_factory
from shared.outbox import Outbox
from shared.scheduler import periodic
from tests.helpers import eventually
from tests.interactions.conftest import fast_settings
from tests.interactions.factories import events, followup_body, interaction_body, iso, now


async def test_schedule_then_complete_links_the_interaction(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = followup_body()
    created = await client.post("/followups", json=body, headers=admin)
    assert created.status_code == 201, created.text
    followup = created.json()
    assert (followup["status"], followup["origin"], followup["overdue"]) == (
        "open",
        "manual",
        False,
    )
    [scheduled] = await events(app, "followup.scheduled", followup_id=followup["id"])
    assert scheduled["assignee_id"] == body["assignee_id"]
    contact = await client.post(
        "/interactions", json=interaction_body(uuid.UUID(body["customer_id"])), headers=admin
    )
    url = f"/followups/{followup['id']}/complete"
    done = await client.post(url, json={"interaction_id": contact.json()["id"]}, headers=admin)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["interaction_id"]) == ("done", contact.json()["id"])
    [completed] = await events(app, "followup.completed", followup_id=followup["id"])
    assert completed["interaction_id"] == contact.json()["id"]
    again = await client.post(url, json={}, headers=admin)
    assert again.status_code == 409


async def test_completing_with_another_customers_interaction_is_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    followup = (await client.post("/followups", json=followup_body(), headers=admin)).json()
    other = (await client.post("/interactions", json=interaction_body(), headers=admin)).json()
    response = await client.post(
        f"/followups/{followup['id']}/complete", json={"interaction_id": other["id"]}, headers=admin
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.interaction_id"


async def test_reschedule_needs_if_match_and_announces_the_new_time(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await client.post("/followups", json=followup_body(), headers=admin)
    url = f"/followups/{created.json()['id']}"
    later = iso(now() + timedelta(days=5))
    assert (await client.patch(url, json={"due_at": later}, headers=admin)).status_code == 428
    moved = await client.patch(
        url, json={"due_at": later}, headers={**admin, "If-Match": created.headers["etag"]}
    )
    assert moved.status_code == 200
    announced = await events(app, "followup.scheduled", followup_id=created.json()["id"])
    assert len(announced) == 2


async def test_agenda_groups_an_agents_open_followups(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    current = now()
    # Ask in a zone where it is about noon, so "today" never ends during the test.
    offset = (12 - current.hour + 12) % 24 - 12
    zone = f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-3 is UTC+3
    local = current.astimezone(ZoneInfo(zone))
    end_of_today = datetime.combine(
        local.date() + timedelta(days=1), datetime.min.time(), ZoneInfo(zone)
    ).astimezone(UTC)
    due = {
        "overdue": current - timedelta(hours=3),
        "due_today": current + (end_of_today - current) / 2,
        "upcoming": end_of_today + timedelta(days=2),
        "too_far": end_of_today + timedelta(days=30),
    }
    ids = {}
    for name, at in due.items():
        body = followup_body(assignee_id=agent, due_at=iso(at))
        ids[name] = (await client.post("/followups", json=body, headers=admin)).json()["id"]
    cancelled = await client.post(
        "/followups",
        json=followup_body(assignee_id=agent, due_at=iso(due["overdue"])),
        headers=admin,
    )
    await client.post(f"/followups/{cancelled.json()['id']}/cancel", headers=admin)
    agenda = await client.get(  # params: the "+" of Etc/GMT+0 must be URL-encoded
        "/agenda", params={"assignee_id": agent, "days": 7, "tz": zone}, headers=admin
    )
    assert agenda.status_code == 200, agenda.text
    body = agenda.json()
    assert [f["id"] for f in body["overdue"]] == [ids["overdue"]]
    assert [f["id"] for f in body["due_today"]] == [ids["due_today"]]
    assert [f["id"] for f in body["upcoming"]] == [ids["upcoming"]]
    assert body["overdue"][0]["overdue"] is True
    bad_zone = await client.get(f"/agenda?assignee_id={agent}&tz=Mars/Base", headers=admin)
    assert bad_zone.status_code == 422


async def run_overdue_job(app: FastAPI) -> None:
    """One round of the overdue scheduler, as the background task runs it."""
    async with app.state.sessions.begin() as session:
        await overdue_job(app, session)


async def test_overdue_followup_publishes_followup_overdue_once(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    clock = app.state.clock = ManualClock()
    try:
        body = followup_body(due_at=iso(clock.now() + timedelta(minutes=10)))
        followup = (await client.post("/followups", json=body, headers=admin)).json()
        overdue_list = f"/followups?customer_id={body['customer_id']}&overdue=true"
        await run_overdue_job(app)
        assert await events(app, "followup.overdue", followup_id=followup["id"]) == []
        assert (await client.get(overdue_list, headers=admin)).json()["items"] == []

        clock.advance(minutes=11)
        for _ in range(3):  # later rounds must not announce it again
            await run_overdue_job(app)
        assert len(await events(app, "followup.overdue", followup_id=followup["id"])) == 1
        listed = (await client.get(overdue_list, headers=admin)).json()["items"]
        assert [(f["id"], f["overdue"]) for f in listed] == [(followup["id"], True)]
    finally:
        app.state.clock = SYSTEM_CLOCK


async def test_two_scheduler_instances_publish_exactly_one_followup_overdue(
    fresh_database: Any,
) -> None:
    url = await fresh_database("interactions")
    settings = fast_settings(service_database_url=url, scheduler_batch_size=7)
    engine = create_engine(settings)
    try:
        customer = uuid.uuid4()
        past = now() - timedelta(minutes=1)
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(Followup),
                [
                    {
                        "id": uuid.uuid4(),
                        "customer_id": customer,
                        "kind": "renewal",
                        "due_at": past - timedelta(seconds=n),
                        "status": "open",
                        "origin": "manual",
                        "version": 1,
                    }
                    for n in range(60)
                ],
            )
        handled = [0, 0]

        def replica(n: int) -> Any:
            """One replica: its own engine and app state, running the service's overdue job."""
            own_engine = create_engine(settings)
            engines.append(own_engine)
            app = cast(
                FastAPI,
                SimpleNamespace(
                    state=SimpleNamespace(
                        settings=settings,
                        sessions=session_factory(own_engine),
                        outbox=Outbox(outbox, "/kehu/interactions"),
                    )
                ),
            )

            async def counted(app: Any, session: Any) -> int:
                claimed = await overdue_job(app, session)
                handled[n] += claimed
                return claimed

            return periodic(f"overdue-{n}", counted, lambda _: 0.01)(app)

        engines: list[Any] = []
        replicas = [asyncio.create_task(replica(n)) for n in range(2)]

        async def all_announced() -> bool:
            async with engine.connect() as conn:
                left = await conn.scalar(
                    sa.select(sa.func.count()).where(Followup.overdue_notified_at.is_(None))
                )
            return left == 0

        try:
            await eventually(all_announced, timeout=30)
        finally:
            for task in replicas:
                task.cancel()
            await asyncio.gather(*replicas, return_exceptions=True)
            for own_engine in engines:
                await own_engine.dispose()
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox.c.data["followup_id"].astext).where(
                        outbox.c.type == "kehu.followup.overdue.v1"
                    )
                )
            ).all()
        announced = [r[0] for r in rows]
        assert len(announced) == 60
        assert len(set(announced)) == 60
        assert sum(handled) == 60
    finally:
        await engine.dispose()
