"""The service desk's configuration, managed by API: SLA policies, holidays, teams with their
members and skills, routing rules and canned responses.

Changes apply to cases from then on (intake, a change of type, severity or tier); deadlines
already computed stay as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from services.complaints import repository as repo
from services.complaints.desk import OPEN_STATUSES
from services.complaints.errors import HolidayNotFound, MissingField, ResponseNotFound, TeamNotFound
from services.complaints.models import CannedResponse, Holiday
from services.complaints.schemas import (
    Calendar,
    CannedResponseIn,
    CannedResponseUpdate,
    HolidayIn,
    RoutingRuleIn,
    RoutingRules,
    SlaPolicies,
    SlaPoliciesRead,
    SlaPolicyRead,
    TeamIn,
    TeamMemberRead,
    TeamRead,
)
from services.complaints.service import load_policies
from shared.context import RequestContext
from shared.http import check_if_match

# -- SLA policies ------------------------------------------------------------------------------


async def sla_policies(ctx: RequestContext) -> SlaPoliciesRead:
    """Every policy in matching order: the list, then the defaults from the settings' matrix."""
    listed = {p.name: p.position for p in await repo.sla_policies(ctx.session)}
    return SlaPoliciesRead(
        policies=[
            SlaPolicyRead(
                name=p.name,
                type=p.type,
                subtype=p.subtype,
                severity=p.severity,
                tier=p.tier,
                channel=p.channel,
                first_response_s=p.first_response_s,
                resolution_s=p.resolution_s,
                pause_states=list(p.pause_states),
                calendar=Calendar(**p.calendar) if p.calendar else None,
                position=listed.get(p.name),
                builtin=p.builtin,
            )
            for p in await load_policies(ctx)
        ]
    )


async def put_sla_policies(ctx: RequestContext, data: SlaPolicies) -> SlaPoliciesRead:
    """Replace the list (the defaults stay after it)."""
    rows = [
        {
            **p.model_dump(exclude={"calendar"}),
            "position": position,
            "calendar": p.calendar.model_dump() if p.calendar else None,
        }
        for position, p in enumerate(data.policies, start=1)
    ]
    for row in rows:
        if row["subtype"] is not None and row["type"] not in (None, "service_request"):
            raise MissingField("Only service requests have a subtype", field="subtype")
    await repo.replace_sla_policies(ctx.session, rows)
    await ctx.audit_change("update", "sla_policies", None, None, ["policies"])
    return await sla_policies(ctx)


# -- holidays ----------------------------------------------------------------------------------


async def holidays(ctx: RequestContext, year: int | None) -> Sequence[Holiday]:
    return await repo.holidays(ctx.session, year)


async def put_holiday(ctx: RequestContext, day: date, data: HolidayIn) -> Holiday:
    await repo.put_holiday(ctx.session, day, data.name)
    await ctx.audit_change("update", "holiday", day.isoformat(), None, ["name"])
    return Holiday(day=day, name=data.name)


async def delete_holiday(ctx: RequestContext, day: date) -> None:
    if not await repo.delete_holiday(ctx.session, day):
        raise HolidayNotFound(f"{day.isoformat()} is not a holiday")
    await ctx.audit_change("delete", "holiday", day.isoformat(), None, ["day"])


# -- teams and routing -------------------------------------------------------------------------


async def teams(ctx: RequestContext, name: str | None = None) -> list[TeamRead]:
    rows = await repo.teams(ctx.session, name)
    if name is not None and not rows:
        raise TeamNotFound(f"Team {name} does not exist")
    names = [t.name for t in rows]
    members = await repo.members_with_load(ctx.session, names, OPEN_STATUSES)
    queued = await repo.queued_per_team(ctx.session, names, OPEN_STATUSES)
    return [
        TeamRead(
            name=t.name,
            lead=t.lead,
            description=t.description,
            members=[
                TeamMemberRead(
                    agent_id=m.id, skills=list(m.skills), active=m.active, open_cases=m.open_cases
                )
                for m in members
                if m.team == t.name
            ],
            queued=queued.get(t.name, 0),
        )
        for t in rows
    ]


async def put_team(ctx: RequestContext, name: str, data: TeamIn) -> TeamRead:
    members = [m.model_dump() for m in data.members]
    await repo.put_team(ctx.session, name, data.lead, data.description, members)
    await ctx.audit_change("update", "team", name, None, ["lead", "description", "members"])
    return (await teams(ctx, name))[0]


async def routing_rules(ctx: RequestContext) -> RoutingRules:
    rows = await repo.routing_rules(ctx.session)
    return RoutingRules(rules=[RoutingRuleIn.model_validate(r, from_attributes=True) for r in rows])


async def put_routing_rules(ctx: RequestContext, data: RoutingRules) -> RoutingRules:
    rows = [
        {**rule.model_dump(), "position": position}
        for position, rule in enumerate(data.rules, start=1)
    ]
    await repo.replace_routing_rules(ctx.session, rows)
    await ctx.audit_change("update", "routing_rules", None, None, ["rules"])
    return await routing_rules(ctx)


# -- canned responses --------------------------------------------------------------------------


async def create_response(ctx: RequestContext, data: CannedResponseIn) -> CannedResponse:
    now = ctx.now()
    row = CannedResponse(id=uuid.uuid4(), version=1, created_at=now, updated_at=now)
    for name, value in data.model_dump().items():
        setattr(row, name, value)
    ctx.session.add(row)
    await ctx.session.flush()
    await ctx.audit_change("create", "canned_response", row.id, None, data.model_dump())
    return row


async def responses(
    ctx: RequestContext, case_type: str | None, locale: str | None
) -> Sequence[CannedResponse]:
    return await repo.canned_responses(ctx.session, case_type, locale)


async def response(ctx: RequestContext, response_id: uuid.UUID) -> CannedResponse:
    row = await repo.canned_response(ctx.session, response_id)
    if row is None:
        raise ResponseNotFound(f"Canned response {response_id} does not exist")
    return row


async def update_response(
    ctx: RequestContext, response_id: uuid.UUID, data: CannedResponseUpdate, if_match: str | None
) -> CannedResponse:
    row = await repo.canned_response(ctx.session, response_id, lock=True)
    if row is None:
        raise ResponseNotFound(f"Canned response {response_id} does not exist")
    check_if_match(if_match, row.version)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name != "type":
            raise MissingField(f"`{name}` cannot be cleared", field=name)
        setattr(row, name, value)
    if changes:
        row.version += 1
        row.updated_at = ctx.now()
        await ctx.session.flush()
    await ctx.audit_change("update", "canned_response", row.id, None, changes)
    return row


async def delete_response(ctx: RequestContext, response_id: uuid.UUID) -> None:
    if not await repo.delete_canned_response(ctx.session, response_id):
        raise ResponseNotFound(f"Canned response {response_id} does not exist")
    await ctx.audit_change("delete", "canned_response", response_id, None, ["id"])
