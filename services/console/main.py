"""The console: `uvicorn services.console.main:create_app --factory` (port 8000 in `make dev`).

Web pages for customer-service managers and agents. It has no database: every figure comes from
the other services' public APIs, called with the signed-in user's token, so their scopes, masks
and audit apply unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import oidc, vendor
from services.console.config import Settings
from services.console.pages import router
from services.console.render import render
from services.console.session import CsrfFailed, flash, sign_out
from services.console.upstream import SignedOut, Upstream
from shared.logs import configure_logging

logger = logging.getLogger("kehu.console")

STATIC = Path(__file__).resolve().parent / "static"

# The pages load nothing from elsewhere: scripts and styles are the console's own.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self' {form_action}"
)


class SecurityHeaders:
    """CSP, no framing, no sniffing, no referrer leaking ids, and pages never cached (scripts
    and styles are: they set their own cache-control)."""

    def __init__(self, app: ASGIApp, form_action: str = "") -> None:
        self.app = app
        self.csp = CSP.format(form_action=form_action).strip()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend(
                    [
                        (b"content-security-policy", self.csp.encode()),
                        (b"x-content-type-options", b"nosniff"),
                        (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"same-origin"),
                    ]
                )
                if not scope["path"].startswith(("/static/", "/vendor/")):
                    headers.append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, _send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging("console")
    # Every page makes several API calls: one access line each would drown the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstream = Upstream(settings)
        try:
            yield
        finally:
            await app.state.upstream.aclose()

    app = FastAPI(
        title="Kehu console",
        lifespan=lifespan,
        # Web pages, not an API: no OpenAPI document to walk.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.zone = ZoneInfo(settings.timezone)
    app.state.oidc = oidc.client(settings)
    app.state.charts = vendor.load()
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_signing_secret,
        session_cookie="kehu_console",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    form_action = str(settings.oidc_issuer or "").rstrip("/")
    app.add_middleware(SecurityHeaders, form_action=form_action)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)

    @app.get("/vendor/{name}", include_in_schema=False)
    async def chart_library(name: str, request: Request) -> Response:
        script: vendor.Script | None = app.state.charts
        if script is None:
            return Response("// echarts is not installed: run make install\n", 404)
        if name != script.name:
            return Response(f"// no such script: the chart library is {script.url}\n", 404)
        headers = {"cache-control": vendor.CACHE_FOREVER, "vary": "accept-encoding"}
        if vendor.accepts_gzip(request.headers.get("accept-encoding")):
            headers["content-encoding"] = "gzip"
            return Response(script.gzipped, media_type="text/javascript", headers=headers)
        return Response(script.body, media_type="text/javascript", headers=headers)

    @app.get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "pass"}

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> dict[str, str]:
        # Ready as soon as it serves: a missing API shows as "not available" on its panel.
        return {"status": "pass"}

    @app.exception_handler(SignedOut)
    async def signed_out(request: Request, exc: SignedOut) -> Response:
        sign_out(request)
        flash(request, "session_expired", "error")
        return RedirectResponse("/login", 303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        logger.warning("CSRF check failed on %s: %s", request.url.path, exc)
        return render(request, "error.html", {"message_key": "csrf_failed"}, status_code=403)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/static"):
            return JSONResponse({"detail": "not found"}, 404)
        return render(request, "error.html", {"message_key": "not_found"}, status_code=404)

    return app
