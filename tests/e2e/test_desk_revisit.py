"""Revisit as work, through the real services: a resolved complaint puts a revisit follow-up on
its owner's agenda in interactions (from `case.resolved`), an overdue revisit is published like
any follow-up, completing it records the outcome on the case (from `followup.completed`); the
customer's timeline shows the case, a need and a consent change next to interactions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import sqlalchemy as sa

from services.complaints.config import Settings as ComplaintsSettings
from services.complaints.main import create_app as complaints_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.jobs import overdue_job
from services.interactions.main import create_app as interactions_app
from services.interactions.models import outbox as interactions_outbox
from services.profiles.config import Settings as ProfilesSettings
from services.profiles.main import create_app as profiles_app
from shared.context import ManualClock
from tests.conftest import auth
from tests.helpers import eventually, serve

TIMEOUT = 60.0


async def _start(stack: AsyncExitStack, app: Any) -> httpx.AsyncClient:
    generator = serve(app)
    client = await generator.__anext__()
    stack.push_async_callback(generator.aclose)
    return client


async def test_a_resolved_complaint_becomes_a_revisit_on_the_owners_agenda_and_back(
    token: Callable[..., str],
) -> None:
    admin = auth(token("admin"))
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    fast = {"outbox_poll_interval_s": 0.2}
    async with AsyncExitStack() as stack:
        profiles = await _start(stack, profiles_app(ProfilesSettings(**fast, rate_limit_per_s=0)))
        interactions_service = interactions_app(
            InteractionsSettings(**fast, overdue_interval_s=3600)
        )
        interactions_service.state.clock = clock = ManualClock()
        interactions = await _start(stack, interactions_service)
        complaints = await _start(stack, complaints_app(ComplaintsSettings(**fast)))

        created = await profiles.post(
            "/customers",
            json={"kind": "person", "display_name": f"Wang {owner}", "owner_id": owner},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        customer = created.json()["id"]
        need = await profiles.post(
            f"/customers/{customer}/needs",
            json={"category": "service", "title": "Yearly maintenance", "priority": "high"},
            headers=admin,
        )
        assert need.status_code == 201, need.text
        consent = await profiles.post(
            f"/customers/{customer}/consents",
            json={"purpose": "phone_calls", "granted": True, "source": "phone"},
            headers=admin,
        )
        assert consent.status_code in (200, 201), consent.text

        filed = await complaints.post(
            "/complaints",
            json={
                "customer_id": customer,
                "channel": "phone",
                "subject": "Late repair",
                "description": "The engineer never came.",
                "category": "service",
                "severity": "medium",
                "assignee": owner,
            },
            headers=admin,
        )
        assert filed.status_code == 201, filed.text
        complaint = filed.json()["id"]
        for step in ("acknowledged", "investigating", "resolved"):
            extra = {"resolution": "Engineer sent"} if step == "resolved" else {}
            moved = await complaints.post(
                f"/complaints/{complaint}/transitions",
                json={"to_status": step, **extra},
                headers=admin,
            )
            assert moved.status_code == 200, moved.text
        revisit_due = moved.json()["revisit_due_at"]

        async def revisits() -> list[dict[str, Any]]:
            found = await interactions.get(
                "/followups", params={"customer_id": customer}, headers=admin
            )
            return [f for f in found.json()["items"] if f["case_id"] == complaint]

        async def scheduled() -> bool:
            return bool(await revisits())

        await eventually(scheduled, timeout=TIMEOUT)
        [followup] = await revisits()
        assert followup["kind"] == "revisit" and followup["origin"] == "case"
        assert followup["assignee_id"] == owner and followup["status"] == "open"
        assert followup["due_at"].replace("Z", "+00:00")[:19] == revisit_due[:19]
        agenda = await interactions.get(
            "/agenda", params={"assignee_id": owner, "days": 30}, headers=admin
        )
        assert [f["id"] for f in agenda.json()["upcoming"]] == [followup["id"]]

        # Past its due time undone: published like any other follow-up, with its case.
        clock.advance(days=8)
        async with interactions_service.state.sessions.begin() as session:
            await overdue_job(interactions_service, session)
        async with interactions_service.state.engine.connect() as conn:
            overdue = (
                (
                    await conn.execute(
                        sa.select(interactions_outbox.c.data).where(
                            interactions_outbox.c.type.like("%followup.overdue%"),
                            interactions_outbox.c.data["followup_id"].astext == followup["id"],
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert [d["case_id"] for d in overdue] == [complaint]

        without = await interactions.post(
            f"/followups/{followup['id']}/complete", json={}, headers=admin
        )
        assert without.status_code == 422
        done = await interactions.post(
            f"/followups/{followup['id']}/complete",
            json={"revisit_outcome": "partially_satisfied"},
            headers=admin,
        )
        assert done.status_code == 200, done.text

        async def closed() -> bool:
            read = await complaints.get(f"/complaints/{complaint}", headers=admin)
            return bool(read.json()["status"] == "closed")

        await eventually(closed, timeout=TIMEOUT)
        read = (await complaints.get(f"/complaints/{complaint}", headers=admin)).json()
        assert read["revisit_outcome"] == "partially_satisfied"
        case = (await complaints.get(f"/cases/{complaint}", headers=admin)).json()
        assert case["type"] == "complaint" and case["reference"].startswith("CP-")

        async def timeline_kinds() -> set[str]:
            page = await interactions.get(f"/customers/{customer}/timeline", headers=admin)
            entries = page.json()["items"]
            closed_case = [e for e in entries if e["type"] == "case"]
            if not closed_case or closed_case[0]["case"]["status"] != "closed":
                return set()
            return {e["type"] for e in entries}

        async def shows_everything() -> bool:
            return {"case", "need", "consent", "followup"} <= await timeline_kinds()

        await eventually(shows_everything, timeout=TIMEOUT)
        page = (await interactions.get(f"/customers/{customer}/timeline", headers=admin)).json()
        entries = {e["type"]: e for e in page["items"]}
        assert entries["case"]["case"]["reference"] == case["reference"]
        assert entries["case"]["case"]["revisit_outcome"] == "partially_satisfied"
        assert entries["need"]["need"]["priority"] == "high"
        assert entries["consent"]["consent"] == {
            "purpose": "phone_calls",
            "granted": True,
            "source": "phone",
        }
