"""What every profiles router shares: the caller's context per scope, path and paging types."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from shared.context import RequestContext, context, read_context
from shared.pagination import MAX_LIMIT


def router() -> APIRouter:
    """A profiles router (`X-Purpose` is documented by the request context on every
    operation that takes one)."""
    return APIRouter()


Reader = Annotated[RequestContext, context("customers:read")]
Writer = Annotated[RequestContext, context("customers:write")]
# The hot writes (create, update): the checks of `Writer` as a plain dependency, with a session
# only when the write asks for one (its transaction, the Idempotency-Key's claim); an update on
# its own autocommitted connection makes none (see `shared.context.context(lazy=True)`).
HotWriter = Annotated[RequestContext, context("customers:write", lazy=True)]
PiiReader = Annotated[RequestContext, context("customers:read", "pii:read")]
# A hot read on its own autocommitted connection: the checks of `Reader` for less per request
# (a plain dependency, no session unless asked for; see `shared.context.read_context`).
HotReader = Annotated[RequestContext, read_context("customers:read")]
CustomerId = Annotated[uuid.UUID, Path(description="The customer's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
