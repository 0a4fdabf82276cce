"""The investigation of a case: its notes (own text or a canned response) and its corrective
and preventive actions, under `/cases/{case_id}` and `/complaints/{complaint_id}`."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path

from services.complaints import service, views
from services.complaints.api.common import Reader, Resource, Writer
from services.complaints.schemas import (
    ActionCreate,
    ActionRead,
    ActionUpdate,
    CaseNoteCreate,
    NoteRead,
)
from shared.problems import problem_responses


def router(r: Resource) -> APIRouter:
    api = APIRouter(tags=[r.tag])
    Id = Annotated[uuid.UUID, Path(alias=r.param)]
    base = f"{r.prefix}/{{{r.param}}}"
    canned = (
        " Send `response_id` to insert a canned response (`GET /responses`), with or without "
        "your own text after it."
        if r.kind is None
        else ""
    )

    @api.post(
        f"{base}/notes",
        response_model=NoteRead,
        status_code=201,
        summary="Add an investigation note",
        responses=problem_responses(401, 403, 404, 422),
        description=f"A note on the {r.noun}, authored by the caller.{canned} "
        "Needs `complaints:write`.",
    )
    async def add_note(case_id: Id, body: r.note_model, ctx: Writer) -> NoteRead:  # type: ignore[name-defined]
        data = CaseNoteCreate.model_validate(body.model_dump())
        return views.note(ctx, await service.add_note(ctx, case_id, data, r.kind))

    @api.get(
        f"{base}/notes",
        response_model=list[NoteRead],
        summary="Investigation notes, oldest first",
        responses=problem_responses(401, 403, 404, 422),
        description=f"Every note of the {r.noun}, oldest first. Needs `complaints:read` (the "
        "text needs `pii:read`, else `[redacted]`).",
    )
    async def list_notes(case_id: Id, ctx: Reader) -> list[NoteRead]:
        return [views.note(ctx, n) for n in await service.notes(ctx, case_id, r.kind)]

    @api.post(
        f"{base}/actions",
        response_model=ActionRead,
        status_code=201,
        summary="Add a corrective or preventive action",
        responses=problem_responses(401, 403, 404, 422),
        description="A corrective (fix this case) or preventive (stop it recurring) action "
        "with an owner, a due date and a status. Needs `complaints:write`.",
    )
    async def add_action(case_id: Id, body: ActionCreate, ctx: Writer) -> ActionRead:
        return views.action(ctx, await service.add_action(ctx, case_id, body, r.kind))

    @api.get(
        f"{base}/actions",
        response_model=list[ActionRead],
        summary=f"Corrective and preventive actions of a {r.noun}",
        responses=problem_responses(401, 403, 404, 422),
        description=f"Every action of the {r.noun}, oldest first. Needs `complaints:read` "
        "(descriptions need `pii:read`, else `[redacted]`).",
    )
    async def list_actions(case_id: Id, ctx: Reader) -> list[ActionRead]:
        return [views.action(ctx, a) for a in await service.actions(ctx, case_id, r.kind)]

    @api.patch(
        f"{base}/actions/{{action_id}}",
        response_model=ActionRead,
        summary="Update an action (status, owner, due date, description)",
        responses=problem_responses(401, 403, 404, 422),
        description="Change an action; send only the fields to change. Needs `complaints:write`.",
    )
    async def update_action(
        case_id: Id, action_id: uuid.UUID, body: ActionUpdate, ctx: Writer
    ) -> ActionRead:
        action = await service.update_action(ctx, case_id, action_id, body, r.kind)
        return views.action(ctx, action)

    return api
