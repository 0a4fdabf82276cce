"""HTTP concurrency and retry helpers: ETag / If-Match and Idempotency-Key.

ETags are the row's `version` (bumped on every change). Updates must send `If-Match`:
missing is 428, stale is 412, and nothing changes. Creating POSTs accept `Idempotency-Key`: the
first response is stored in the same transaction as the write and replayed for retries; the same
key with a different request body is a 422.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Header, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.problems import PreconditionFailed, PreconditionRequired, Unprocessable

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag from your last read of this resource; required on updates.",
        examples=['"3"'],
    ),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="A unique key per logical request (e.g. a UUID). Retries with the same key "
        "get the first response back instead of creating a second record.",
    ),
]


def etag_of(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    """Raise 428 without If-Match, 412 when it does not name the current version."""
    current = etag_of(version)
    if if_match is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag of your last read to update this resource",
            current_etag=current,
        )
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and current not in candidates:
        raise PreconditionFailed(
            f"The resource changed since you read it; its current ETag is {current}",
            current_etag=current,
        )


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag_of(version)


def idempotency_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("principal", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("body", JSONB),
        sa.Column("headers", JSONB),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


class Idempotency:
    """One request's Idempotency-Key handling, inside the request's transaction."""

    def __init__(self, table: sa.Table, key: str | None, principal: str) -> None:
        self.table = table
        self.key = key
        self.principal = principal
        self.fingerprint = ""

    async def replay(self, session: AsyncSession, request: Request) -> JSONResponse | None:
        """The stored response for a retried key, or None when this request should proceed.

        A concurrent request with the same key waits here until the first one commits.
        """
        if self.key is None:
            return None
        body = await request.body()
        self.fingerprint = hashlib.sha256(
            request.method.encode() + request.url.path.encode() + b"\0" + body
        ).hexdigest()
        t = self.table
        claimed = await session.execute(
            insert(t)
            .values(key=self.key, principal=self.principal, fingerprint=self.fingerprint)
            .on_conflict_do_nothing()
            .returning(t.c.key)
        )
        if claimed.first() is not None:
            return None
        stored = (
            await session.execute(
                sa.select(t).where(t.c.key == self.key, t.c.principal == self.principal)
            )
        ).one()
        if stored.fingerprint != self.fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was used for a different request; use a new key",
                idempotency_key=self.key,
            )
        headers = {**(stored.headers or {}), "Idempotent-Replayed": "true"}
        return JSONResponse(stored.body, status_code=stored.status_code, headers=headers)

    async def remember(
        self,
        session: AsyncSession,
        status_code: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        if self.key is None:
            return
        t = self.table
        await session.execute(
            sa.update(t)
            .where(t.c.key == self.key, t.c.principal == self.principal)
            .values(
                status_code=status_code,
                body=json.loads(json.dumps(body, default=str)),
                headers=headers or {},
            )
        )
