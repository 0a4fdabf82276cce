"""Every write operation of every service (from its OpenAPI) answers bodies that are not what it
declares (empty, malformed, a number over Python's digit limit, nesting too deep, not UTF-8)
with a 4xx problem naming the problem, never a 500.

The operations come from the OpenAPI documents, so a new endpoint is walked without being listed.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shared.migrate import SERVICES
from tests.security.conftest import Stack
from tests.security.stack import Operation, headers, operations, request_of

WRITES = ("post", "put", "patch", "delete")
PROBLEM = "application/problem+json"
DIGITS = f"more than {sys.get_int_max_str_digits()} digits"


@dataclass(frozen=True)
class BadBody:
    name: str
    content: bytes
    named: str  # what the problem's detail must say


JSON_BODIES = (
    BadBody("empty", b"", "empty"),
    BadBody("malformed", b"{", "not valid JSON"),
    BadBody("huge-number", b'{"x": ' + b"9" * 5000 + b"}", DIGITS),
    BadBody("deep", b"[" * 50_000, "too deeply"),
)
# Text formats other than JSON (the import's CSV): no body, and bytes that are not text.
TEXT_BODIES = (
    BadBody("empty", b"", "empty"),
    BadBody("not-utf8", b"\xff\xfe\xfa", "UTF-8"),
)

ALL = operations()
WRITE_OPS = [op for op in ALL if op.method in WRITES and not op.public]
WITH_BODY = [op for op in WRITE_OPS if op.has_body]
# A write without a declared body that still names a resource (a random id here): a body sent
# anyway must not break it. Writes with neither (analytics' recompute and rebuild) would start
# real work on the shared stack and read no body, so they are left out.
WITHOUT_BODY = [op for op in WRITE_OPS if not op.has_body and op.parameters("path")]


def media_types(op: Operation) -> list[str]:
    return list(op.spec["requestBody"].get("content", {})) or ["application/json"]


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def cases() -> list[Any]:
    found = []
    for op in WITH_BODY:
        for media in media_types(op):
            for body in JSON_BODIES if is_json(media) else TEXT_BODIES:
                found.append(pytest.param(op, media, body, id=f"{op.id} {media} {body.name}"))
    return found


def test_every_service_document_has_its_write_operations_walked() -> None:
    """The walk is only as good as what it finds: a document that lost its operations fails."""
    with_body = {name: [op for op in WITH_BODY if op.service == name] for name in SERVICES}
    writes = {name: [op for op in WRITE_OPS if op.service == name] for name in SERVICES}
    minimum = {"profiles": 8, "interactions": 10, "complaints": 9, "subscriptions": 4}
    for name, least in minimum.items():
        assert len(with_body[name]) >= least, (name, [op.id for op in with_body[name]])
    # Analytics writes only start jobs; it declares no request body anywhere. Should it ever
    # declare one, that operation is walked like the others.
    assert len(writes["analytics"]) >= 2
    assert all(not op.has_body for op in writes["analytics"])
    assert any(op.service == "profiles" and "text/csv" in media_types(op) for op in WITH_BODY), (
        "the import's CSV form is walked too"
    )
    assert len(cases()) >= 120


_subjects = itertools.count()


def bad_request(op: Operation, media: str, body: BadBody) -> dict[str, Any]:
    path, query = request_of(op)
    hdrs = {
        # A subject per request: the rate limiter (per subject) must not answer in its place.
        **headers("admin", subject=f"bad-input-{next(_subjects)}"),
        "Content-Type": media,
    }
    return {
        "method": op.method.upper(),
        "url": path,
        "params": query,
        "headers": hdrs,
        "content": body.content,
    }


async def send(client: httpx.AsyncClient, request: dict[str, Any]) -> httpx.Response:
    try:
        return await client.request(**request, timeout=60)
    except Exception as exc:  # an in-process app re-raises what it answered a 500 for
        raise AssertionError(f"the service failed: {exc!r}") from exc


def assert_problem(response: httpx.Response) -> dict[str, Any]:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.status_code not in (401, 403, 429), response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == response.status_code
    return problem


@pytest.mark.parametrize(("op", "media", "body"), cases())
async def test_a_body_that_cannot_be_parsed_is_a_problem_naming_it(
    stack: Stack, op: Operation, media: str, body: BadBody
) -> None:
    response = await send(stack.clients[op.service], bad_request(op, media, body))
    problem = assert_problem(response)
    optional = not op.spec["requestBody"].get("required", False)
    if body.name == "empty" and optional:
        return  # no body is a valid request; it failed on something else (an unknown id)
    assert response.status_code == 422, problem
    assert body.named in (problem.get("detail") or ""), problem


@pytest.mark.parametrize("op", WITHOUT_BODY, ids=lambda op: op.id)
async def test_a_write_without_a_body_ignores_a_bad_one(stack: Stack, op: Operation) -> None:
    for body in JSON_BODIES:
        response = await send(stack.clients[op.service], bad_request(op, "application/json", body))
        problem = assert_problem(response)
        assert response.status_code == 404, problem  # the random id, not the body
