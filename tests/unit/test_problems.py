"""RFC 9457 problem details: domain errors, validation, database failures (503 says retry)."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi as AsyncpgDbapi
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.problems import (
    PROBLEM_BASE,
    PROBLEM_JSON,
    ProblemError,
    Unauthorized,
    install_handlers,
)


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"server said {sqlstate}")
        self.sqlstate = sqlstate


def _app(error: BaseException) -> FastAPI:
    app = FastAPI()
    install_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


async def _get(error: BaseException) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://kehu") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),  # a pool connecting mid-restart
        ConnectionRefusedError(111, "Connection refused"),
        DBAPIError("SELECT 1", None, PgError("57P03")),  # the database system is starting up
        DBAPIError("SELECT 1", None, PgError("57P01")),  # terminating: administrator command
        DBAPIError("SELECT 1", None, PgError("08006")),  # connection failure
        DBAPIError("SELECT 1", None, PgError("40P01")),  # deadlock
    ],
    ids=["reset", "refused", "starting-up", "admin-shutdown", "connection-failure", "deadlock"],
)
async def test_an_unavailable_database_is_a_503_problem_with_retry_after(
    error: BaseException,
) -> None:
    response = await _get(error)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] in ("1", "5")
    assert response.json()["status"] == 503


def _adapted(error: type[BaseException], message: str, cause: BaseException) -> BaseException:
    """An error of SQLAlchemy's asyncpg adapter as it raises it, with the driver's as cause."""
    adapted = error(message)
    adapted.__cause__ = cause
    return adapted


@pytest.mark.parametrize(
    "error",
    [
        _adapted(
            AsyncpgDbapi.Error,
            "connection was closed in the middle of operation",
            asyncpg.ConnectionDoesNotExistError("terminating connection"),
        ),
        _adapted(
            AsyncpgDbapi.InternalClientError,
            "cannot switch to state 15; another operation (2) is in progress",
            asyncpg.InternalClientError("cannot switch to state 15"),
        ),
        _adapted(AsyncpgDbapi.InterfaceError, "connection is closed", ConnectionResetError(104)),
        # A hot path's statement on the driver itself: its error comes as the driver raises it.
        asyncpg.InternalClientError(
            "cannot switch to state 12; another operation (2) is in progress"
        ),
    ],
    ids=["dropped", "broken-protocol-state", "closed", "driver-broken-protocol-state"],
)
async def test_a_raw_connection_the_server_dropped_is_a_503(error: BaseException) -> None:
    # A hot path's transaction starting on its raw connection (`ctx.db()`) while PostgreSQL
    # restarts: the adapter's own error class comes unwrapped by SQLAlchemy.
    response = await _get(error)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_database_error_is_still_a_500() -> None:
    response = await _get(DBAPIError("SELECT 1", None, PgError("XX000")))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"


class CustomerNotFound(ProblemError):
    status, slug, title = 404, "customer-not-found", "Customer not found"


async def test_a_domain_error_is_a_problem_with_its_type_detail_and_extensions() -> None:
    response = await _get(CustomerNotFound("No customer 42", customer_id="42", hint=None))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "customer-not-found"
    assert (body["title"], body["status"], body["detail"]) == (
        "Customer not found",
        404,
        "No customer 42",
    )
    assert body["instance"] == "/boom" and body["customer_id"] == "42"
    assert "hint" not in body, "extensions without a value are left out"
    assert "www-authenticate" not in response.headers


async def test_a_401_asks_for_a_bearer_token() -> None:
    response = await _get(Unauthorized("A bearer token is required"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_validation_problem_names_every_bad_field() -> None:
    app = FastAPI()
    install_handlers(app)

    @app.get("/items")
    async def items(limit: int, after: int = 0) -> None:
        return None

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kehu") as client:
        response = await client.get("/items", params={"after": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "validation"
    assert {e["field"] for e in body["errors"]} == {"query.limit", "query.after"}
    assert "query.limit" in body["detail"] and "query.after" in body["detail"]


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (IntegrityError("INSERT", None, PgError("23505")), 409, "conflict"),  # a lost race
        (DBAPIError("INSERT", None, PgError("22021")), 422, "invalid-data"),  # e.g. a NUL byte
        (DBAPIError("SELECT", None, PgError("57014")), 503, "unavailable"),  # statement timeout
    ],
    ids=["unique-violation", "bad-encoding", "statement-timeout"],
)
async def test_database_errors_the_caller_can_act_on_are_named(
    error: BaseException, status: int, slug: str
) -> None:
    response = await _get(error)
    assert response.status_code == status
    assert response.json()["type"] == PROBLEM_BASE + slug


async def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing() -> None:
    response = await _get(RuntimeError("secret internals: password=hunter2"))
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "hunter2" not in response.text
    assert response.json()["type"] == PROBLEM_BASE + "internal"
