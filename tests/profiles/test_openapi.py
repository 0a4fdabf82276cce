"""Every profiles operation documents itself: summary, description, examples, errors."""

from __future__ import annotations

from typing import Any

import httpx


def has_examples(schema: dict[str, Any], schemas: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
    if "examples" in schema or "example" in schema:
        return True
    return any(
        "examples" in prop or any("examples" in alt for alt in prop.get("anyOf", []))
        for prop in schema.get("properties", {}).values()
    )


async def test_every_operation_has_description_examples_and_errors(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        if path.startswith(("/customers", "/duplicates"))
        for method, op in ops.items()
    ]
    assert len(operations) >= 20
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary") and len(op.get("description", "")) > 40, where
        assert {"401", "403", "422"} <= set(op["responses"]), where
        assert op["security"] == [{"HTTPBearer": []}], where
        assert "customers:" in op["description"] or "pii:read" in op["description"], where
        for content in op.get("requestBody", {}).get("content", {}).values():
            assert "example" in content or has_examples(content["schema"], schemas), where
        if method == "patch":
            assert {"412", "428"} <= set(op["responses"]), where
            assert any(p["name"] == "If-Match" for p in op["parameters"]), where
        if method == "post" and "201" in op["responses"]:
            assert any(p["name"] == "Idempotency-Key" for p in op["parameters"]), where
    assert "Problem" in schemas
