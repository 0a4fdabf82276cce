"""Message templates per purpose and locale: the ones in use, their versions, new versions,
previews."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from services.outreach import service
from services.outreach.api.common import Reader, Writer
from services.outreach.schemas import (
    KEY_PATTERN,
    Locale,
    PreviewRead,
    TemplatePreview,
    TemplateRead,
    TemplateWrite,
)
from services.outreach.templating import TemplateText
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.problems import problem_responses

router = APIRouter(tags=["templates"])

Key = Annotated[str, Path(pattern=KEY_PATTERN, examples=["case_resolved"])]


def _read(text: TemplateText, row: Any) -> TemplateRead:
    return TemplateRead(
        key=text.key,
        locale=text.locale,
        version=text.version,
        purpose=text.purpose,
        subject=text.subject,
        body=text.body,
        sms_body=text.sms_body,
        created_by=row.created_by if row is not None else "built-in",
        created_at=row.created_at if row is not None else None,
    )


@router.get(
    "/templates",
    summary="Templates in use",
    response_model=list[TemplateRead],
    responses=problem_responses(401, 403),
)
async def list_templates(ctx: Reader) -> list[TemplateRead]:
    """The newest version of every template per locale (version 0 is the built-in text).

    Templates are Jinja2 in a sandbox: `{{ name }}` and the message's variables, `{% if %}`;
    no access to Python internals. Needs `outreach:read`."""
    return [_read(text, row) for text, row in await service.all_templates(ctx)]


@router.get(
    "/templates/{key}",
    summary="Every version of a template",
    response_model=list[TemplateRead],
    responses=problem_responses(401, 403, 404, 422),
)
async def template_versions(key: Key, ctx: Reader) -> list[TemplateRead]:
    """Every version per locale, newest first, built-in last (needs `outreach:read`)."""
    return [_read(text, row) for text, row in await service.template_versions(ctx, key)]


@router.put(
    "/templates/{key}/{locale}",
    status_code=201,
    summary="Store a new version of a template",
    response_model=TemplateRead,
    responses=problem_responses(401, 403, 422),
)
async def put_template(
    key: Key,
    locale: Locale,
    body: TemplateWrite,
    ctx: Writer,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Add a version (the newest is used from now on; messages record the version they used).
    A template that does not parse is a 422 `invalid-template`; a built-in key keeps its
    purpose. Needs `outreach:write`."""

    async def create() -> Reply:
        text = await service.put_template(ctx, key, locale, body)
        return Reply(_read(text, None).model_copy(update={"created_by": ctx.actor}), 201)

    return await idempotent(ctx, idempotency_key, create)


@router.post(
    "/templates/{key}/preview",
    summary="Preview a template",
    response_model=PreviewRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def preview(key: Key, body: TemplatePreview, ctx: Reader) -> PreviewRead:
    """Render the template (newest, a `version`, or a `draft`) with example values merged with
    `variables`; nothing is sent or stored. Needs `outreach:read`."""
    rendered, version = await service.preview(ctx, key, body)
    return PreviewRead(
        key=key,
        locale=body.locale,
        version=version,
        subject=rendered.subject,
        body=rendered.body,
        short=rendered.short,
        variables=dict(body.variables),
    )
