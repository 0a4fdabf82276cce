"""The read context of hot reads (`shared.context.read_context`): no session unless asked for,
and one asked for ends as the request context's would (committed, or rolled back on error)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from shared.auth import Principal
from shared.context import ReadContext


def read_context_of(app: FastAPI) -> ReadContext:
    state = app.state
    return ReadContext(
        session=None,  # type: ignore[arg-type]  # made on first use
        outbox=state.outbox,
        principal=Principal("read-context-tester", "admin", frozenset({"pii:read"})),
        settings=state.settings,
        privacy=state.privacy,
        method="GET",
        app_state=state,
    )


async def entries(session_of: Callable[[], Any], resource_id: str) -> int:
    async with session_of() as session:
        found = await session.execute(
            sa.text("SELECT count(*) FROM audit_log WHERE resource_id = :id"), {"id": resource_id}
        )
        return int(found.scalar_one())


async def test_a_read_on_its_own_connection_makes_no_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    ctx = read_context_of(app)
    conn = await ctx.db(transaction=False)
    assert await conn.fetchval("SELECT 1") == 1
    await ctx.end(None, None, None)
    assert ctx._session is None and ctx._own is None


@pytest.mark.parametrize("failed", [False, True])
async def test_a_session_asked_for_is_committed_or_rolled_back_at_the_end(
    client: httpx.AsyncClient, app: FastAPI, session_of: Callable[[], Any], failed: bool
) -> None:
    ctx = read_context_of(app)
    await ctx.db(transaction=False)
    resource_id = f"read-context-{uuid.uuid4()}"
    await ctx.audit_change("read", "customer", resource_id=resource_id)
    assert ctx.session.in_transaction()
    error = RuntimeError("the endpoint failed")
    await ctx.end(*((type(error), error, None) if failed else (None, None, None)))
    assert not ctx.session.in_transaction() and ctx._own is None
    assert await entries(session_of, resource_id) == (0 if failed else 1)
