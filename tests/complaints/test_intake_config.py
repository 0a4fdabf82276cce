"""Intake keeps the desk's configuration in process: a change committed anywhere (another
replica, a hand-written statement) applies to the very next intake."""

from __future__ import annotations

import sqlalchemy as sa

from tests.complaints.test_desk import Desk, desk  # noqa: F401  (the fixture)


async def test_a_policy_written_outside_this_process_applies_to_the_next_intake(
    desk: Desk,  # noqa: F811
) -> None:
    before = await desk.create(severity="low")
    assert before["sla"]["policy"] == "default/low/C"
    # Another replica (here: a statement on the database) lists a policy for inquiries.
    async with desk.app.state.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO sla_policies (position, name, type, first_response_s, "
                "resolution_s, pause_states) VALUES (1, 'inquiries', 'inquiry', 600, 3600, "
                "ARRAY['waiting_on_customer'])"
            )
        )
    after = await desk.create(severity="low")
    assert after["sla"]["policy"] == "inquiries"
    assert after["sla"]["first_response_target_s"] == 600
    async with desk.app.state.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM sla_policies"))
    again = await desk.create(severity="low")
    assert again["sla"]["policy"] == "default/low/C"


async def test_a_routing_rule_written_outside_this_process_applies_to_the_next_intake(
    desk: Desk,  # noqa: F811
) -> None:
    await desk.put(
        "/teams/front",
        {"lead": None, "members": [{"agent_id": "ann", "skills": [], "active": True}]},
    )
    first = await desk.create()
    assert first["team"] is None
    async with desk.app.state.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO routing_rules (position, type, team) VALUES (1, 'inquiry', 'front')"
            )
        )
    routed = await desk.create()
    assert routed["team"] == "front" and routed["assignee"] == "ann"
