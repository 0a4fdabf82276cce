"""Points 5 and 7: assignment (manual and least-loaded) and the work queue."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx

from tests.complaints.conftest import ADMIN, file_complaint, headers, walk


async def register_team(client: httpx.AsyncClient, *agents: str, inactive: str = "") -> str:
    team = f"team-{uuid.uuid4().hex[:8]}"
    for agent in (*agents, *([inactive] if inactive else [])):
        response = await client.put(
            f"/agents/{agent}", json={"team": team, "active": agent != inactive}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
    return team


async def test_automatic_assignment_picks_the_least_loaded_active_agent(
    client: httpx.AsyncClient,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    a1, a2, idle = f"a1-{suffix}", f"a2-{suffix}", f"a3-{suffix}"
    team = await register_team(client, a1, a2, inactive=idle)
    assigned = [(await file_complaint(client, team=team)) for _ in range(4)]
    assert Counter(c["assignee"] for c in assigned) == {a1: 2, a2: 2}
    assert all(c["team"] == team for c in assigned)

    first_of_a2 = next(c for c in assigned if c["assignee"] == a2)
    await walk(client, first_of_a2["id"], "acknowledged", "investigating", "resolved")
    extra = await file_complaint(client)
    response = await client.post(
        f"/complaints/{extra['id']}/assignment", json={"team": team}, headers=ADMIN
    )
    assert response.status_code == 200 and response.json()["assignee"] == a2

    loads = (await client.get("/agents", params={"team": team}, headers=ADMIN)).json()
    assert {(a["id"], a["active"], a["open_complaints"]) for a in loads} == {
        (a1, True, 2),
        (a2, True, 2),
        (idle, False, 0),
    }


async def test_manual_assignment_and_a_team_without_agents(client: httpx.AsyncClient) -> None:
    c = await file_complaint(client)
    manual = await client.post(
        f"/complaints/{c['id']}/assignment", json={"assignee": "agent-x"}, headers=ADMIN
    )
    assert manual.status_code == 200 and manual.json()["assignee"] == "agent-x"
    nobody = await client.post(
        f"/complaints/{c['id']}/assignment", json={"team": f"empty-{uuid.uuid4()}"}, headers=ADMIN
    )
    assert nobody.status_code == 409
    assert nobody.json()["type"].endswith("/no-agent-available")
    both = await client.post(
        f"/complaints/{c['id']}/assignment", json={"assignee": "x", "team": "y"}, headers=ADMIN
    )
    assert both.status_code == 422


async def test_work_queue_filters_and_sorts_by_nearest_deadline(client: httpx.AsyncClient) -> None:
    customer = uuid.uuid4()
    made = {
        severity: await file_complaint(client, customer_id=customer, severity=severity)
        for severity in ("low", "critical", "medium", "high")
    }
    done = await file_complaint(
        client, customer_id=customer, severity="critical", category="billing"
    )
    await walk(client, done["id"], "acknowledged", "investigating", "resolved")

    page = (
        await client.get("/complaints", params={"customer_id": str(customer)}, headers=ADMIN)
    ).json()
    assert [c["id"] for c in page["items"]] == [
        made["critical"]["id"],
        made["high"]["id"],
        made["medium"]["id"],
        made["low"]["id"],
        done["id"],
    ]
    assert page["next_cursor"] is None

    def ids_of(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    query = {"customer_id": str(customer)}
    assert ids_of(
        await client.get("/complaints", params={**query, "status": "resolved"}, headers=ADMIN)
    ) == [done["id"]]
    assert ids_of(
        await client.get(
            "/complaints", params={**query, "severity": ["low", "high"]}, headers=ADMIN
        )
    ) == [made["high"]["id"], made["low"]["id"]]
    assert ids_of(
        await client.get("/complaints", params={**query, "category": "billing"}, headers=ADMIN)
    ) == [done["id"]]
    assert (
        len(
            ids_of(
                await client.get(
                    "/complaints", params={**query, "sla_status": "on_track"}, headers=ADMIN
                )
            )
        )
        == 5
    )
    assert (
        ids_of(
            await client.get(
                "/complaints", params={**query, "sla_status": "breached"}, headers=ADMIN
            )
        )
        == []
    )
    assert ids_of(
        await client.get("/complaints", params={**query, "escalated": "true"}, headers=ADMIN)
    ) == [made["critical"]["id"], done["id"]]


async def test_work_queue_pages_with_a_cursor_and_filters_by_assignee(
    client: httpx.AsyncClient,
) -> None:
    customer = uuid.uuid4()
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    ids = [
        (await file_complaint(client, customer_id=customer, assignee=agent))["id"] for _ in range(5)
    ]
    params: dict[str, str | int] = {"assignee": agent, "limit": 2}
    seen: list[str] = []
    while True:
        page = (await client.get("/complaints", params=params, headers=ADMIN)).json()
        seen += [c["id"] for c in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ids  # same severity: due in order of receipt
    bad = await client.get("/complaints", params={"cursor": "garbage!"}, headers=ADMIN)
    assert bad.status_code == 400
    bad_status = await client.get("/complaints", params={"status": "lost"}, headers=ADMIN)
    assert bad_status.status_code == 422


async def test_concurrent_automatic_assignments_spread_over_the_team(
    client: httpx.AsyncClient,
) -> None:
    suffix = uuid.uuid4().hex[:6]
    agents = [f"c{n}-{suffix}" for n in range(3)]
    team = await register_team(client, *agents)
    made = await asyncio.gather(*(file_complaint(client, team=team) for _ in range(6)))
    assert Counter(c["assignee"] for c in made) == {agent: 2 for agent in agents}


async def test_only_managers_and_admins_staff_the_teams(client: httpx.AsyncClient) -> None:
    agent_id, team = f"agent-{uuid.uuid4().hex[:8]}", f"team-{uuid.uuid4().hex[:8]}"
    as_agent = await client.put(
        f"/agents/{agent_id}", json={"team": team}, headers=headers("agent")
    )
    assert as_agent.status_code == 403
    assert as_agent.json()["required_scope"] == "agents:write"
    as_manager = await client.put(
        f"/agents/{agent_id}", json={"team": team}, headers=headers("manager")
    )
    assert as_manager.status_code == 200, as_manager.text
    assert as_manager.json() == {"id": agent_id, "team": team, "active": True, "open_complaints": 0}
