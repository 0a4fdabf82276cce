"""What customers and providers reach without a token: the survey page (`/s/{token}`), the
unsubscribe link (`/u/{token}`) and the providers' delivery reports (`/callbacks/{channel}`).

Each checks its own credential (a signed link, a signed body). They are not part of the JSON
API's OpenAPI document: the pages are HTML for people, the callbacks the providers' contract
(see the service description). A bad, used or expired link gets a clear page, never a 500.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.outreach import links, pages, peers, service
from services.outreach.api.common import ProviderCall, SurveyPage, UnsubscribePage
from services.outreach.channels import verify_signature
from services.outreach.errors import BadCallback
from services.outreach.schemas import ProviderCallback
from shared.problems import Unprocessable, loads_json

router = APIRouter(include_in_schema=False)

Token = Annotated[str, Path(max_length=2048)]
STATUS_OF = {"open": 200, "used": 410, "expired": 410, "invalid": 404}


async def _form(request: Request) -> dict[str, str]:
    raw = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(raw, max_num_fields=50).items()}


def _int(form: dict[str, str], name: str, low: int, high: int) -> int | None:
    value = form.get(name, "").strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if low <= number <= high else None


def _answer(form: dict[str, str]) -> dict[str, Any] | None:
    """The survey body interactions takes, from the form; None when nothing was rated."""
    scores = {d: s for d in pages.DIMENSIONS if (s := _int(form, d, 1, 5)) is not None}
    nps = _int(form, "nps", 0, 10)
    if not scores and nps is None:
        return None
    answer: dict[str, Any] = {"scores": scores, "nps": nps, "effort": _int(form, "effort", 1, 7)}
    comment = form.get("comment", "").strip()[:5000]
    if comment:
        answer["comment"] = comment
    return {k: v for k, v in answer.items() if v is not None}


@router.get("/s/{token}", response_class=HTMLResponse)
async def survey_page(token: Token, ctx: SurveyPage, request: Request) -> HTMLResponse:
    found = await service.open_link(ctx, token)
    locale = request.query_params.get("lang") or (found.link.locale if found.link else None)
    if found.state != "open" or found.link is None:
        return HTMLResponse(pages.notice(locale, found.state), STATUS_OF[found.state])
    path = request.url.path
    html = pages.survey(locale, found.link.greeting_name, path, path)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.post("/s/{token}", response_class=HTMLResponse)
async def answer_survey(token: Token, ctx: SurveyPage, request: Request) -> HTMLResponse:
    form = await _form(request)
    locale = form.get("lang")
    answer = _answer(form)
    if answer is None:
        found = await service.open_link(ctx, token)
        if found.state != "open" or found.link is None:
            return HTMLResponse(pages.notice(locale, found.state), STATUS_OF[found.state])
        path = request.url.path
        error = pages.texts(locale)["need_answer"]
        return HTMLResponse(pages.survey(locale, found.link.greeting_name, path, path, error), 422)
    try:
        result = await service.answer_survey(ctx, token, answer)
    except (peers.PeerUnavailable, peers.PeerRefused):
        return HTMLResponse(pages.notice(locale, "busy"), 503, headers={"Retry-After": "60"})
    if result.state == "answered":
        return HTMLResponse(pages.notice(locale, "thanks"))
    return HTMLResponse(pages.notice(locale, result.state), STATUS_OF[result.state])


@router.get("/u/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: Token, ctx: UnsubscribePage, request: Request) -> HTMLResponse:
    locale = request.query_params.get("lang")
    try:
        _, purpose = service.read_unsubscribe(service.settings_of(ctx), token)
    except links.BadToken:
        return HTMLResponse(pages.notice(locale, "invalid"), 404)
    path = request.url.path
    return HTMLResponse(pages.unsubscribe(locale, purpose, path, path))


@router.post("/u/{token}", response_class=HTMLResponse)
async def unsubscribe(token: Token, ctx: UnsubscribePage, request: Request) -> HTMLResponse:
    """One click (RFC 8058 `List-Unsubscribe-Post`) or the page's button."""
    locale = (await _form(request)).get("lang")
    try:
        await service.unsubscribe(ctx, token)
    except links.BadToken:
        return HTMLResponse(pages.notice(locale, "invalid"), 404)
    return HTMLResponse(pages.notice(locale, "unsub_done"))


@router.post("/callbacks/{channel}")
async def provider_callback(
    channel: Literal["email", "sms", "wechat"], ctx: ProviderCall, request: Request
) -> dict[str, str]:
    """A provider's delivery report, signed like our requests to it (X-Kehu-Timestamp,
    X-Kehu-Signature under the channel's callback secret)."""
    body = await request.body()
    secret = getattr(service.settings_of(ctx), f"{channel}_callback_secret")
    if not verify_signature(
        secret,
        request.headers.get("x-kehu-timestamp"),
        request.headers.get("x-kehu-signature"),
        body,
        time.time(),
    ):
        raise BadCallback("The X-Kehu-Signature does not match the body under the callback secret")
    try:
        report = ProviderCallback.model_validate(loads_json(body))
    except ValidationError as exc:
        raise Unprocessable(f"Not a delivery report: {exc.errors()[0]['msg']}") from exc
    message = await service.provider_report(ctx, channel, report)
    return {"message_id": str(message.id), "status": message.status}
