"""How database failures map to problem responses: unavailable is 503 and says retry."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from shared.problems import install_handlers


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


async def test_an_unknown_database_error_is_still_a_500() -> None:
    response = await _get(DBAPIError("SELECT 1", None, PgError("XX000")))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
