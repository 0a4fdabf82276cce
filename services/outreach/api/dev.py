"""The dev SMTP sink's mail (only with `OUTREACH_DEV_SMTP_SINK_PORT`, never in production)."""

from __future__ import annotations

import uuid
from email import message_from_string, policy
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from services.outreach import pages
from services.outreach import repository as repo
from services.outreach.api.common import SurveyPage
from services.outreach.schemas import DevMailRead

router = APIRouter(include_in_schema=False)
DevReader = SurveyPage  # the dev sink is for the developer's own machine: no token


def _body(raw: str | None) -> str:
    if not raw:
        return ""
    parsed = message_from_string(raw, policy=policy.default)
    part = parsed.get_body(preferencelist=("plain", "html"))
    return str(part.get_content()) if part is not None else ""


@router.get("/dev/mail", response_model=list[DevMailRead])
async def dev_mail(
    ctx: DevReader,
    to: Annotated[str | None, Query(max_length=320)] = None,
    message_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DevMailRead]:
    """What the dev SMTP sink received, newest first (filter by recipient or message id)."""
    rows = await repo.dev_mail(ctx.session, to=to, message_id=message_id, limit=limit)
    return [
        DevMailRead.model_validate(r, from_attributes=True).model_copy(
            update={"body": _body(r.raw)}
        )
        for r in rows
    ]


@router.get("/dev/mail/ui", response_class=HTMLResponse)
async def dev_mail_ui(ctx: DevReader) -> HTMLResponse:
    rows = await repo.dev_mail(ctx.session, to=None, message_id=None, limit=100)
    mails: list[dict[str, Any]] = [
        {
            "id": r.id,
            "subject": r.subject,
            "received_at": r.received_at.isoformat(timespec="seconds"),
            "recipients": r.recipients,
            "body": _body(r.raw),
        }
        for r in rows
    ]
    return HTMLResponse(pages.dev_mail(mails))
