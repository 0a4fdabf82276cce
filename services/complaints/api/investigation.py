"""The investigation of a complaint: its notes and its corrective and preventive actions."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.complaints import service, views
from services.complaints.api.common import Reader, Writer
from services.complaints.schemas import ActionCreate, ActionRead, ActionUpdate, NoteCreate, NoteRead
from shared.problems import problem_responses

router = APIRouter(tags=["complaints"])


@router.post(
    "/complaints/{complaint_id}/notes",
    response_model=NoteRead,
    status_code=201,
    summary="Add an investigation note",
    responses=problem_responses(401, 403, 404, 422),
)
async def add_note(complaint_id: uuid.UUID, body: NoteCreate, ctx: Writer) -> NoteRead:
    """A note of the investigation, authored by the caller. Needs `complaints:write`."""
    return views.note(ctx, await service.add_note(ctx, complaint_id, body.body))


@router.get(
    "/complaints/{complaint_id}/notes",
    response_model=list[NoteRead],
    summary="Investigation notes, oldest first",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_notes(complaint_id: uuid.UUID, ctx: Reader) -> list[NoteRead]:
    """Every note of the complaint, oldest first. Needs `complaints:read` (the text needs
    `pii:read`, else `[redacted]`)."""
    return [views.note(ctx, n) for n in await service.notes(ctx, complaint_id)]


@router.post(
    "/complaints/{complaint_id}/actions",
    response_model=ActionRead,
    status_code=201,
    summary="Add a corrective or preventive action",
    responses=problem_responses(401, 403, 404, 422),
)
async def add_action(complaint_id: uuid.UUID, body: ActionCreate, ctx: Writer) -> ActionRead:
    """A corrective (fix this case) or preventive (stop it recurring) action with an owner,
    a due date and a status. Needs `complaints:write`."""
    return views.action(ctx, await service.add_action(ctx, complaint_id, body))


@router.get(
    "/complaints/{complaint_id}/actions",
    response_model=list[ActionRead],
    summary="Corrective and preventive actions of a complaint",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_actions(complaint_id: uuid.UUID, ctx: Reader) -> list[ActionRead]:
    """Every action of the complaint, oldest first. Needs `complaints:read` (descriptions need
    `pii:read`, else `[redacted]`)."""
    return [views.action(ctx, a) for a in await service.actions(ctx, complaint_id)]


@router.patch(
    "/complaints/{complaint_id}/actions/{action_id}",
    response_model=ActionRead,
    summary="Update an action (status, owner, due date, description)",
    responses=problem_responses(401, 403, 404, 422),
)
async def update_action(
    complaint_id: uuid.UUID, action_id: uuid.UUID, body: ActionUpdate, ctx: Writer
) -> ActionRead:
    """Change an action; send only the fields to change. Needs `complaints:write`."""
    return views.action(ctx, await service.update_action(ctx, complaint_id, action_id, body))
