"""RFC 9457 problem details for every error a Kehu service returns.

Domain code raises `ProblemError` subclasses; the handlers installed by `install_handlers` map
them, request-validation failures, HTTP errors and unexpected exceptions to
`application/problem+json`. Nothing below the router raises `HTTPException`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import (
    DBAPIError,
    EmulatedDBAPIException,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://kehu.dev/problems/"
logger = logging.getLogger("kehu.problems")


class FieldError(BaseModel):
    """One invalid input field."""

    field: str = Field(description="Dotted path of the field, e.g. `body.email`.")
    message: str
    type: str = Field(description="Machine-readable error code.")


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(None, examples=["Customer 0b6f… does not exist"])
    instance: str | None = Field(None, examples=["/customers/0b6f…"])
    request_id: str | None = None
    errors: list[FieldError] | None = Field(
        None, description="Each invalid field, for validation problems."
    )

    model_config = {"extra": "allow"}


class ProblemError(Exception):
    """Base of domain errors; subclasses set status, slug and title."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extensions = extensions


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class InvalidTransition(ProblemError):
    status, slug, title = 409, "invalid-transition", "Invalid state transition"


class Unprocessable(ProblemError):
    status, slug, title = 422, "unprocessable", "Unprocessable content"


class InvalidJson(Unprocessable):
    slug, title = "invalid-json", "Invalid JSON"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service unavailable"


def problem_response(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": correlation_id.get(),
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_HTTP_SLUGS = {
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _sqlstate(exc: DBAPIError) -> str:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy error ('' when unknown)."""
    for candidate in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return ""


# Not the request's fault and likely gone on retry: serialization failures and deadlocks,
# statement timeouts, and the server restarting (admin or crash shutdown, "starting up").
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57014", "57P01", "57P02", "57P03"}


def _database_unreachable(exc: DBAPIError) -> bool:
    """The database could not be reached or dropped the connection (class 08, refused, reset).

    asyncpg reports these through SQLAlchemy as a plain DBAPIError, not an OperationalError.
    """
    if _sqlstate(exc).startswith(("08", "53")) or exc.connection_invalidated:
        return True
    cause: BaseException | None = exc.orig
    for _ in range(6):
        if cause is None:
            break
        # InternalClientError: the driver's protocol state of a connection dropped mid-operation.
        if isinstance(
            cause,
            OSError
            | asyncpg.InterfaceError
            | asyncpg.PostgresConnectionError
            | asyncpg.InternalClientError,
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _first_line(error: object) -> str:
    return str(error).splitlines()[0][:200] if str(error) else "invalid value"


# -- request bodies that are not JSON ------------------------------------------------------------


def json_error_detail(error: BaseException | None, what: str = "The body") -> str | None:
    """What is wrong with a JSON text that `json.loads` refused, or None for any other error.

    Besides `JSONDecodeError` the parser raises a plain `ValueError` for an integer longer than
    `sys.get_int_max_str_digits()` (4300 by default), `UnicodeDecodeError` for bytes that are
    not UTF-8/16/32, and `RecursionError` for arrays or objects nested thousands deep.
    """
    if isinstance(error, json.JSONDecodeError):
        if not error.doc.strip():
            return f"{what} is empty; send a JSON document"
        return f"{what} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
    if isinstance(error, UnicodeDecodeError):
        return f"{what} is not valid JSON: it is not UTF-8 text"
    if isinstance(error, RecursionError):
        return f"{what} nests arrays or objects too deeply"
    if isinstance(error, ValueError):  # the only other ValueError json.loads raises
        limit = sys.get_int_max_str_digits()
        return f"{what} holds a number with more than {limit} digits"
    return None


def loads_json(text: str | bytes, what: str = "The body") -> Any:
    """`json.loads` for input from a client: anything it cannot parse is an `InvalidJson` (422)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(json_error_detail(exc, what)) from exc


def validation_detail(errors: Sequence[Mapping[str, Any]]) -> str:
    """The `detail` of a 422 for FastAPI's request validation errors: names the problem."""
    if any(tuple(e["loc"]) == ("body",) and e["type"] == "missing" for e in errors):
        return "The request body is empty; this operation needs a JSON document"
    return "Invalid fields: " + ", ".join(_field_path(e["loc"]) for e in errors)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _domain(request: Request, exc: ProblemError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(
            request, exc.status, exc.slug, exc.title, exc.detail, headers, **exc.extensions
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(err["loc"]), "message": err["msg"], "type": err["type"]}
            for err in exc.errors()
        ]
        if detail := json_error_detail(exc.__cause__):
            # FastAPI's own body parsing: the same problem as a body a route parses itself.
            return problem_response(request, 422, InvalidJson.slug, InvalidJson.title, detail)
        return problem_response(
            request,
            422,
            "validation",
            "Request validation failed",
            validation_detail(exc.errors()),
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers a body its JSON parser failed on other than with `JSONDecodeError` (a
        # number over the digit limit, nesting too deep) with a bare 400 "There was an error
        # parsing the body"; the parser's error is the cause and names the problem.
        if exc.status_code == 400 and (detail := json_error_detail(exc.__cause__)):
            return problem_response(request, 422, InvalidJson.slug, InvalidJson.title, detail)
        slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(request, exc.status_code, slug, title, detail, exc.headers)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = _sqlstate(exc)
        if isinstance(exc, IntegrityError) or sqlstate.startswith("23"):
            # A race the service layer's checks could not see (two creates of one unique value).
            logger.info("integrity error mapped to 409: %s", exc.orig)
            return problem_response(
                request,
                409,
                "conflict",
                "Conflict",
                "The change conflicts with the current state (a concurrent request won); retry.",
            )
        if sqlstate.startswith("22"):
            # Data exceptions: input PostgreSQL cannot store (NUL characters, out-of-range values).
            return problem_response(
                request,
                422,
                "invalid-data",
                "Invalid data",
                f"The input cannot be stored: {_first_line(exc.orig)}",
            )
        if sqlstate in _TRANSIENT_SQLSTATES:
            return problem_response(
                request,
                503,
                "unavailable",
                "Service unavailable",
                "The database could not complete the request in time; retry.",
                {"Retry-After": "1"},
            )
        if _database_unreachable(exc):
            return await _db_down(request, exc)
        logger.exception("database error", exc_info=exc)
        return problem_response(
            request,
            500,
            "internal",
            "Internal server error",
            "An unexpected error occurred; quote the request_id when reporting it.",
        )

    @app.exception_handler(EmulatedDBAPIException)
    async def _adapted_driver_database(
        request: Request, exc: EmulatedDBAPIException
    ) -> JSONResponse:
        # The asyncpg adapter's own errors come unwrapped when the raw connection of a hot path
        # (`ctx.db()`) starts its transaction on a connection the server dropped.
        return await _database(request, DBAPIError(None, None, exc))

    @app.exception_handler(asyncpg.PostgresError)
    async def _driver_database(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        # Hot paths run hand-written statements on the asyncpg connection (`ctx.db()`): its
        # errors come unwrapped, and mean what they mean through SQLAlchemy.
        if isinstance(exc, asyncpg.PostgresConnectionError):
            return await _db_down(request, exc)
        return await _database(request, DBAPIError(None, None, exc))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(TimeoutError)
    # Raised as they are (not wrapped by SQLAlchemy) while a pool connects to a restarting
    # server: refused or reset sockets, asyncpg's own connection errors.
    @app.exception_handler(ConnectionError)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.InterfaceError)
    # The driver's protocol state of a connection dropped mid-operation, unwrapped on a hot path.
    @app.exception_handler(asyncpg.InternalClientError)
    async def _db_down(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unavailable: %s", exc)
        return problem_response(
            request,
            503,
            "unavailable",
            "Service unavailable",
            "The database is unreachable; retry later.",
            {"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return problem_response(
            request,
            500,
            "internal",
            "Internal server error",
            "An unexpected error occurred; quote the request_id when reporting it.",
        )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json errors."""
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid bearer token",
        403: "Token lacks the required scope",
        404: "Not found",
        409: "Conflict",
        412: "If-Match does not match the current ETag",
        413: "Payload too large",
        422: "Validation failed; `errors` names each bad field",
        428: "If-Match header required",
        503: "A dependency is unavailable",
    }
    return {
        status: {
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
