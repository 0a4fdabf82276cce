"""OpenAPI post-processing: document the problem+json errors every operation can return."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
