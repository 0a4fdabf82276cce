"""OpenAPI post-processing (the problem+json errors every operation can return) and the
interactive docs pages, served with their scripts from the service itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from shared.problems import PROBLEM_JSON, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    "400": "Bad request (for example an invalid cursor)",
    "401": "Missing, expired or invalid bearer token",
    "403": "The token lacks the scope this operation needs",
    "422": "Validation failed; `errors` names each bad field",
    "503": "A dependency (the database) is unavailable; retry after `Retry-After`",
}


def _problem(status: str) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
    }


def install_openapi(app: FastAPI) -> None:
    """Replace FastAPI's default 422 schema with Problem and add the errors every operation has."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for defs in list(components["Problem"].pop("$defs", {}).items()):
            components.setdefault(defs[0], defs[1])
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                if (
                    "422" in responses
                    or operation.get("parameters")
                    or operation.get("requestBody")
                ):
                    responses["422"] = _problem("422")
                if operation.get("security"):
                    responses.setdefault("401", _problem("401"))
                    responses.setdefault("403", _problem("403"))
                    responses.setdefault("503", _problem("503"))
                for status, response in responses.items():
                    if status.startswith(("4", "5")) and "content" in response:
                        content = response["content"]
                        if "application/json" in content:
                            content.setdefault(PROBLEM_JSON, {"schema": _PROBLEM_REF})
                            del content["application/json"]
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# Under /docs, so the rate limit's exemption for the docs covers the assets too.
DOCS_ASSETS_URL = "/docs/assets"
# The pinned `fastapi-offline` wheel ships Swagger UI, ReDoc and a favicon as static files.
DOCS_ASSETS_PACKAGE = ("fastapi_offline", "static")


def install_docs_pages(app: FastAPI) -> None:
    """`/docs` (Swagger UI) and `/redoc` (ReDoc) loading their scripts from this service.

    FastAPI's own pages load them from a public CDN, so on an air-gapped site, or where that
    CDN is blocked, they stay blank. Build the app with `docs_url=None, redoc_url=None`.
    """
    app.mount(DOCS_ASSETS_URL, StaticFiles(packages=[DOCS_ASSETS_PACKAGE]), name="docs-assets")
    oauth2_redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
            # No badge that sends the document to the public validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        # ReDoc always shows its vendor's logo from that vendor's CDN; the browser is told not
        # to fetch images from anywhere else (the page hides the logo when it cannot load).
        page.headers["Content-Security-Policy"] = "img-src 'self' data:"
        return page
