"""A hot path's own pooled connection (`ctx.db(transaction=False)`) goes back to the pool after
the request, unless the request failed for a reason that was not the caller's: then it is
discarded, since the pool knows nothing of statements sent on the driver itself (one
interrupted mid-operation would fail whichever request took the connection next)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from shared.auth import Principal
from shared.context import ReadContext, RequestContext
from shared.db import create_engine
from shared.problems import NotFound
from tests.conftest import settings_for
from tests.helpers import eventually


@pytest.fixture
async def engine(fresh_database: Any) -> Any:
    url = await fresh_database("profiles")
    engine = create_engine(settings_for(url, service_name="profiles"))
    yield engine
    await engine.dispose()


def context(engine: Any) -> RequestContext:
    return ReadContext(
        session=None,  # type: ignore[arg-type]  # the hot path needs none
        outbox=None,  # type: ignore[arg-type]
        principal=Principal(subject="release-test", role=None, scopes=frozenset()),
        settings=None,  # type: ignore[arg-type]
        app_state=SimpleNamespace(engine=engine),
    )


async def backend_of(engine: Any) -> int:
    ctx = context(engine)
    pid = int(await (await ctx.db(transaction=False)).fetchval("SELECT pg_backend_pid()"))
    ctx.release()
    return pid


async def alive(engine: Any, pid: int) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
        return found.first() is not None


@pytest.mark.parametrize(
    "failure",
    [OSError("connection reset"), TimeoutError(), RuntimeError("interrupted mid-statement")],
)
async def test_a_connection_is_discarded_after_a_failure_that_was_not_the_callers(
    engine: Any, failure: BaseException
) -> None:
    ctx = context(engine)
    conn = await ctx.db(transaction=False)
    pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
    ctx.release(failure)

    async def gone() -> bool:
        return not await alive(engine, pid)

    await eventually(gone, timeout=10)
    assert await backend_of(engine) != pid


async def test_a_connection_goes_back_to_the_pool_after_a_callers_error(engine: Any) -> None:
    ctx = context(engine)
    conn = await ctx.db(transaction=False)
    pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
    ctx.release(NotFound("No such customer"))
    assert await alive(engine, pid)
    assert await backend_of(engine) == pid  # the same connection serves the next request
