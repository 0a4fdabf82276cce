"""Idempotency-Key, written once for every service.

A creating POST that sends `Idempotency-Key` runs once per (key, caller); a retry gets the first
reply back with `Idempotent-Replayed: true`; the same key with a different request is 422. The
reply is stored in the request's own transaction, **sealed** (AES-GCM under the service keyring,
like every other personal datum: a reply can quote personal data or a webhook secret), with
only the ids it mentions left clear so that erasure can find and drop it. A reply sealed under a
key since retired from the keyring cannot be opened: that is a 409 naming the problem, in every
service. Without a key nothing is stored or sealed.

    return await idempotent(ctx, idempotency_key, lambda: create(ctx, data))

where `create` returns a `Reply` (status, the body model, headers).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB, insert

from shared.crypto import KeyringError, keyring
from shared.http import model_response
from shared.problems import Conflict, Unprocessable

if TYPE_CHECKING:
    from shared.context import RequestContext

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEFAULT_SEAL_CONTEXT = "idempotency_keys.body"


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


@dataclass
class Reply:
    """What a creating endpoint answers: status, body and headers."""

    body: BaseModel | dict[str, Any] | list[Any]
    status_code: int = 201
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> Any:
        if isinstance(self.body, BaseModel):
            return self.body.model_dump(mode="json")
        return json.loads(json.dumps(self.body, default=str))

    def response(self, content: Any | None = None) -> Response:
        if content is None and isinstance(self.body, BaseModel):
            return model_response(self.body, self.status_code, self.headers)  # one serialisation
        return JSONResponse(
            self.content() if content is None else content,
            status_code=self.status_code,
            headers=self.headers,
        )


def seal(body: Any, context: str = DEFAULT_SEAL_CONTEXT) -> dict[str, Any]:
    """A stored reply: encrypted whole; the ids it mentions (and its `customer_id`) clear."""
    text = json.dumps(body, default=str)
    return {
        "customer_id": body.get("customer_id") if isinstance(body, dict) else None,
        "ids": sorted(set(UUID_PATTERN.findall(text))),
        "sealed": keyring().seal(text, context),
    }


def unseal(stored: Any, context: str = DEFAULT_SEAL_CONTEXT) -> Any:
    """The reply `seal` stored; a retired key (or a damaged value) is a 409."""
    if not isinstance(stored, dict) or "sealed" not in stored:
        raise Conflict(
            "The stored reply of this Idempotency-Key cannot be replayed; look the record up "
            "instead of retrying"
        )
    try:
        return json.loads(keyring().open(stored["sealed"], context))
    except (KeyringError, InvalidTag, ValueError) as exc:
        raise Conflict(
            "The stored reply of this Idempotency-Key was encrypted with a retired key and "
            "cannot be replayed; look the record up instead of retrying"
        ) from exc


async def idempotent(
    ctx: RequestContext,
    key: str | None,
    run: Callable[[], Awaitable[Reply]],
) -> Response:
    """Run a creating request once per Idempotency-Key and caller; replay it for retries."""
    if key is None:
        return (await run()).response()
    state = ctx.app_state
    table: sa.Table = state.idempotency_table
    context: str = getattr(state, "idempotency_seal_context", DEFAULT_SEAL_CONTEXT)
    request = ctx.request
    body = await request.body() if request is not None else b""
    path = request.url.path.encode() if request is not None else b""
    method = (ctx.method or "").encode()
    fingerprint = hashlib.sha256(method + path + b"\0" + body).hexdigest()
    subject = ctx.principal.subject
    # A concurrent request with the same key waits on this insert until the first commits.
    claimed = await ctx.session.execute(
        insert(table)
        .values(key=key, principal=subject, fingerprint=fingerprint)
        .on_conflict_do_nothing()
        .returning(table.c.key)
    )
    if claimed.first() is None:
        stored = (
            await ctx.session.execute(
                sa.select(table).where(table.c.key == key, table.c.principal == subject)
            )
        ).one()
        if stored.fingerprint != fingerprint:
            raise Unprocessable(
                "This Idempotency-Key was used for a different request; use a new key",
                idempotency_key=key,
            )
        ctx.replayed = True
        headers = {**(stored.headers or {}), "Idempotent-Replayed": "true"}
        return JSONResponse(
            unseal(stored.body, context), status_code=stored.status_code, headers=headers
        )
    reply = await run()
    content = reply.content()
    await ctx.session.execute(
        sa.update(table)
        .where(table.c.key == key, table.c.principal == subject)
        .values(status_code=reply.status_code, body=seal(content, context), headers=reply.headers)
    )
    return reply.response(content)
