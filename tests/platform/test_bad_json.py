"""Bodies that are not JSON map to a 422 problem naming what is wrong, never a 500.

Pure: the mapping functions, and a bare FastAPI app with the shared handlers (no stack).
"""

from __future__ import annotations

import base64
import json
import sys

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from shared.limits import RateLimitMiddleware
from shared.pagination import InvalidCursor, decode_cursor
from shared.problems import (
    InvalidJson,
    install_handlers,
    json_error_detail,
    loads_json,
    validation_detail,
)

HUGE_NUMBER = b'{"x": ' + b"9" * 5000 + b"}"
DEEP = b"[" * 100_000


def parse_error(text: bytes) -> BaseException:
    try:
        json.loads(text)
    except (ValueError, RecursionError) as exc:
        return exc
    raise AssertionError(f"{text[:20]!r} parsed")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"{", "not valid JSON: Expecting property name"),
        (b'{"a": 1,}', "not valid JSON"),
        (b'"\xff"', "not UTF-8"),
        (HUGE_NUMBER, f"a number with more than {sys.get_int_max_str_digits()} digits"),
        (DEEP, "nests arrays or objects too deeply"),
    ],
    ids=["empty", "blank", "truncated", "trailing-comma", "not-utf8", "huge-number", "deep"],
)
def test_every_way_json_loads_fails_is_named(text: bytes, named: str) -> None:
    error = parse_error(text)
    assert named in (json_error_detail(error) or "")
    with pytest.raises(InvalidJson) as raised:
        loads_json(text)
    assert raised.value.status == 422
    assert named in (raised.value.detail or "")


def test_the_subject_of_the_message_is_the_callers() -> None:
    assert json_error_detail(parse_error(HUGE_NUMBER), "The line") == (
        f"The line holds a number with more than {sys.get_int_max_str_digits()} digits"
    )


def test_errors_that_are_not_from_the_parser_are_not_json_problems() -> None:
    assert json_error_detail(None) is None
    assert json_error_detail(KeyError("x")) is None


def test_a_missing_body_is_called_empty_and_other_fields_are_listed() -> None:
    missing = [{"loc": ("body",), "type": "missing", "msg": "Field required"}]
    assert "request body is empty" in validation_detail(missing)
    fields = [
        {"loc": ("body", "email"), "type": "value_error", "msg": "bad"},
        {"loc": ("query", "limit"), "type": "int_parsing", "msg": "bad"},
    ]
    assert validation_detail(fields) == "Invalid fields: body.email, query.limit"


class Thing(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()
    install_handlers(app)

    @app.post("/things")
    async def create(thing: Thing) -> Thing:
        return thing

    @app.post("/raw")
    async def raw(request: Request) -> object:
        return loads_json(await request.body())

    return app


@pytest.mark.parametrize("path", ["/things", "/raw"])
@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (HUGE_NUMBER, "digits"),
        (DEEP, "too deeply"),
        (b"\xff\xfe{", "not UTF-8"),
    ],
    ids=["empty", "malformed", "huge-number", "deep", "not-utf8"],
)
async def test_fastapi_parsed_and_raw_bodies_answer_the_same_problem(
    path: str, body: bytes, named: str
) -> None:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kehu") as client:
        response = await client.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert named in problem["detail"], problem
    if named != "empty" or path == "/raw":
        assert problem["type"].endswith("/invalid-json"), problem


# -- JSON a client sends outside the body: the token the rate limiter peeks into, cursors -------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    ["[]", "1", "[" * 5000, '{"sub": ' + "9" * 5000 + "}"],
    ids=["array", "number", "deep", "huge-number"],
)
async def test_the_rate_limiter_passes_a_token_whose_payload_is_no_claims_on(payload: str) -> None:
    app = FastAPI()
    install_handlers(app)
    app.add_middleware(RateLimitMiddleware, rate=50, burst=200)

    @app.get("/x")
    async def x() -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    token = f"{_b64('{}')}.{_b64(payload)}.signature"
    async with httpx.AsyncClient(transport=transport, base_url="http://kehu") as client:
        response = await client.get("/x", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text  # the auth dependency refuses it later


@pytest.mark.parametrize("text", ["[" * 5000, "9" * 5000, "[]"], ids=["deep", "huge", "array"])
def test_a_cursor_that_is_not_ours_is_an_invalid_cursor(text: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(_b64(text))
