"""What every profiles router shares: the caller's context per scope, path and paging types."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query

from shared.context import RequestContext, context
from shared.pagination import MAX_LIMIT


async def purpose(
    x_purpose: Annotated[
        str | None,
        Header(
            description="Why you access the data (e.g. a ticket number); recorded with every "
            "audit entry of the request (first 500 characters).",
            examples=["support ticket T-1042"],
        ),
    ] = None,
) -> None:
    """Documents `X-Purpose` on every operation; the request context reads it."""


def router() -> APIRouter:
    return APIRouter(dependencies=[Depends(purpose)])


Reader = Annotated[RequestContext, context("customers:read")]
Writer = Annotated[RequestContext, context("customers:write")]
PiiReader = Annotated[RequestContext, context("customers:read", "pii:read")]
CustomerId = Annotated[uuid.UUID, Path(description="The customer's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
