"""HTTP concurrency headers: ETag / If-Match, and the Idempotency-Key header's documentation.

ETags are the row's `version` (bumped on every change). Updates must send `If-Match`:
missing is 428, stale is 412, and nothing changes. Creating POSTs accept `Idempotency-Key`;
what it does is `shared.idempotency`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response
from pydantic import BaseModel

from shared.problems import PreconditionFailed, PreconditionRequired

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


def model_response(
    model: BaseModel | Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON response serialised straight from a validated model (or a list/dict of them).

    An endpoint that returns a model has FastAPI dump it, validate the dump against the
    response model and serialise it again; the service layer validated it already, so hot
    paths answer with this (the operation keeps `response_model=` for its documentation).
    The bytes are the ones FastAPI would send.
    """
    serializer = getattr(model, "__pydantic_serializer__", None)
    if serializer is not None:
        content = serializer.to_json(model)
    else:
        from pydantic_core import to_json

        content = to_json(model)
    return Response(content, status_code, headers, media_type="application/json")
