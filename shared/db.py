"""Async engine and sessions: one commit point per request (or per consumed batch)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from shared.settings import ServiceSettings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    """Declarative base per service: subclass with your own `metadata = new_metadata()`."""

    __abstract__ = True


def json_loads(text: str | bytes) -> Any:
    """JSON read by orjson (several times faster than `json` on the pages' JSON columns and
    sealed documents), and by `json` where orjson refuses what PostgreSQL stores: an integer
    beyond 64 bits."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        json_deserializer=json_loads,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_timeout=10,
        connect_args={
            "timeout": 5,
            "command_timeout": settings.db_statement_timeout_ms / 1000,
            "server_settings": {"statement_timeout": str(settings.db_statement_timeout_ms)},
        },
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed once after the endpoint returns, rolled back on error.

    Use it through `SessionDep`: its function scope makes the commit happen before the response
    is sent, so a failed commit is an error response, never a success that did not persist.
    """
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def rows_json(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as one JSON array of objects for `json(b)_to_recordset`, so a statement takes any
    number of rows as one parameter (and stays one cached statement): uuids and datetimes as
    orjson writes them (naive ones as UTC, as asyncpg takes them), decimals as their exact
    text."""
    return orjson.dumps(rows, default=json_default, option=orjson.OPT_NAIVE_UTC).decode()


def json_default(value: Any) -> str:
    """Decimals, and the uuids orjson leaves to us: asyncpg's own (ids read back, e.g. merge
    survivors) subclass `uuid.UUID`, and orjson writes the exact class only."""
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
