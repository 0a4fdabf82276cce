"""Jinja2 templates with the request's language, user, CSRF token and formatting filters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import Response

from services.console import figures
from services.console.i18n import LANGUAGES, negotiate, translate
from services.console.session import csrf_token, current_user, take_flash

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f}"


def _signed(value: Any) -> str:
    """A change in points: `+2.5`, `-1.0`, `-` when unknown."""
    return "-" if value is None else f"{float(value):+.1f}"


def _number(value: Any) -> str:
    if value is None:
        return "-"
    try:
        return f"{float(value):,.0f}" if abs(float(value)) >= 100 else f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _chart_data(value: Any) -> Markup:
    """JSON for a `<script type="application/json">` block: `<` escaped so no tag can close
    the block, whatever the data holds."""
    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))


TEMPLATES.env.filters.update(
    pct=_pct,
    signed=_signed,
    number=_number,
    duration=figures.duration,
    chart_data=_chart_data,
)


def language(request: Request) -> str:
    chosen = request.session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language"))


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    *,
    fragment: bool = False,
) -> Response:
    """A page, or with `fragment` a part of one fetched by its script: that leaves the flash
    message in the session for the next page."""
    lang = language(request)
    zone = request.app.state.zone
    base = {
        "lang": lang,
        "languages": LANGUAGES,
        "t": lambda key: translate(lang, key),
        "user": current_user(request),
        "csrf_token": csrf_token(request),
        "flash": None if fragment else take_flash(request),
        "charts": request.app.state.charts,
        "when": lambda value, with_time=True: figures.local_time(value, zone, with_time),
        "path": request.url.path,
        "settings": request.app.state.settings,
    }
    return TEMPLATES.TemplateResponse(
        request, template, {**base, **(context or {})}, status_code=status_code
    )
