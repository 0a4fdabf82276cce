"""One request context for every service: what a unit of work needs, built by one dependency.

An endpoint asks for the context with the scope it needs::

    Writer = Annotated[RequestContext, context("customers:write")]

    @router.post("/customers")
    async def create_customer(ctx: Writer, data: CustomerCreate) -> ...:
        return await service.create_customer(ctx, data)

and passes it to the service layer. It carries the request's transaction (`session`, committed
once after the endpoint returns), the `outbox`, the caller (`principal`), the service's
`settings`, the `clock` (tests move it instead of sleeping), the `request_id`, the caller's
`purpose` and the service's `privacy` spec, through which masking and audit happen.

**Audit of changes cannot be forgotten**: a write request (POST, PUT, PATCH, DELETE) whose
transaction committed without any `audit_change` entry gets one generic entry at commit time
(the action from the method, the route as the resource, the path's ids), so a new write
endpoint is audited even before it records its own, more precise entry.

Consumers and jobs build a context with `RequestContext.system(...)`: same service functions,
no request.

**Hot paths** may skip the ORM: `await ctx.db()` is the asyncpg connection under the request's
session, inside its transaction (the session still commits once), so hand-written statements
(data-modifying CTEs: one round trip for a row, its history, its events and its audit entry)
and ORM work share one unit of work. `await ctx.db(transaction=False)` is for reads, and for
a write that is one statement (atomic by itself): the connection runs in autocommit, so a read
and its audit entry are two round trips, not four, and such a write one, not three.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import asyncpg
from anyio import CancelScope
from asgi_correlation_id import correlation_id
from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.audit import AUDIT_FROM_JSON, audit_json
from shared.auth import BEARER_DESCRIPTION, Bearer, Principal, authenticate
from shared.problems import Forbidden, ProblemError
from shared.settings import ServiceSettings

# Failures that say what was wrong with the request, not with its database connection.
CALLERS_ERRORS = (ProblemError, StarletteHTTPException, RequestValidationError)

if TYPE_CHECKING:
    from shared.outbox import Outbox
    from shared.privacy import Privacy

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_METHOD_ACTION = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ManualClock:
    """A clock tests move: `advance(minutes=30)` instead of sleeping."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        self.at = self.at + (delta or timedelta(**parts))
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at


SYSTEM_CLOCK = SystemClock()


def clock_of(app: Any) -> Clock:
    """The app's clock (`app.state.clock`, a `SystemClock` unless a test installed another)."""
    return getattr(app.state, "clock", None) or SYSTEM_CLOCK


def utcnow() -> datetime:
    """Wall-clock UTC now, for code with no context at hand (prefer `ctx.now()`)."""
    return SYSTEM_CLOCK.now()


@dataclass
class RequestContext:
    session: AsyncSession
    outbox: Outbox
    principal: Principal
    settings: ServiceSettings
    clock: Clock = SYSTEM_CLOCK
    privacy: Privacy | None = None
    request_id: str | None = None
    purpose: str | None = None
    method: str | None = None
    route: str | None = None
    path_params: dict[str, Any] = field(default_factory=dict)
    app_state: Any = None
    request: Request | None = None
    audited_changes: int = 0
    replayed: bool = False  # an Idempotency-Key replay: nothing changed
    _driver: asyncpg.Connection | None = None
    _adapter: Any = None  # SQLAlchemy's asyncpg adapter of that connection
    _own: Any = None  # a pooled connection taken outside the session (autocommit reads)

    # -- the database ---------------------------------------------------------------------

    async def db(self, *, transaction: bool = True) -> asyncpg.Connection:
        """The asyncpg connection for hand-written statements.

        With `transaction=True` (writes) it is the session's connection, inside the request's
        transaction, which the context commits once. With `transaction=False` (reads) it is a
        pooled connection of its own in autocommit: a read and its audit entry are two round
        trips, no BEGIN/COMMIT, no session work (the session's connection is used instead once
        the session has one).
        """
        if self._driver is None:
            if transaction or self.in_transaction():
                connection = await self.session.connection()
                self._bind((await connection.get_raw_connection()).dbapi_connection)
            else:
                self._own = await self.app_state.engine.raw_connection()
                self._bind(self._own.dbapi_connection)
        if transaction and self._adapter._transaction is None and not self._adapter.autocommit:
            await self._adapter._start_transaction()  # the BEGIN SQLAlchemy would send
        assert self._driver is not None
        return self._driver

    def wake_relay(self, *, at_commit: bool) -> None:
        """Wake this process's outbox relay for the events the request's statements wrote:
        at the request's commit when they are in its transaction (`at_commit`), at once when
        they are committed already (a statement in autocommit on `db(transaction=False)`, or a
        transaction of its own on that connection)."""
        if at_commit:
            self.outbox.written(self.session)
        else:
            self.outbox.wake()

    def in_transaction(self) -> bool:
        """Whether the request's session began a transaction (an Idempotency-Key's claim, ORM
        work): hand-written statements then join it; reads use its connection."""
        return self.session.in_transaction()

    def _bind(self, adapter: Any) -> None:
        self._adapter = adapter
        self._driver = adapter._connection

    def release(self, failed: BaseException | None = None) -> None:
        """Return a connection `db(transaction=False)` took of its own to the pool.

        After a failure that is not the caller's (a 4xx says what was wrong with the request),
        the connection is discarded instead: the pool knows nothing of statements sent on the
        driver itself, and a statement interrupted by a dropped server or a cancellation
        leaves the driver mid-operation ("another operation is in progress" for whichever
        request took it next)."""
        if self._own is not None:
            own, self._own = self._own, None
            if (failed is not None and not isinstance(failed, CALLERS_ERRORS)) or (
                self._driver is not None and self._driver.is_closed()
            ):
                own.invalidate(failed if isinstance(failed, Exception) else None)
            else:
                own.close()

    # -- time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    # -- who --------------------------------------------------------------------------------

    @property
    def actor(self) -> str:
        return self.principal.subject

    @property
    def can_read_pii(self) -> bool:
        return self.principal.has("pii:read")

    def require(self, scope: str) -> None:
        """Refuse (403) unless the caller holds `scope`; for rules decided inside a service."""
        if not self.principal.has(scope):
            raise Forbidden(f"This operation needs the `{scope}` scope", required_scope=scope)

    # -- privacy ----------------------------------------------------------------------------

    @property
    def pii(self) -> Privacy:
        if self.privacy is None:
            raise RuntimeError(f"service {self.settings.service_name} declared no privacy spec")
        return self.privacy

    def mask(self, resource: str, model: Any) -> Any:
        """`model` as this caller may see it: personal fields masked without `pii:read`."""
        return self.pii.view(self, resource, model)

    async def audit_change(
        self,
        action: str,
        resource: str,
        resource_id: Any = None,
        customer_id: Any = None,
        fields: Iterable[str] = (),
    ) -> None:
        """Record a change in the caller's transaction (so it exists iff the change does)."""
        await self.pii.record(
            self, action, resource, resource_id=resource_id, customer_id=customer_id, fields=fields
        )
        self.audited_changes += 1

    async def audit_reads(self, records: Iterable[tuple[str, Any, Any]]) -> None:
        """Record that unmasked personal data went to this caller: one entry per customer.

        `records` are (resource, record, customer id) triples; only callers with `pii:read`
        are recorded (the others only ever see masked values). One statement however many."""
        if self._driver is not None:  # a hot path on the driver connection: stay on it
            entries = self.pii.read_entries(self, records)
            if entries:
                await self._driver.execute(AUDIT_FROM_JSON, audit_json(entries))
            return
        await self.pii.record_reads(self, records)

    def change_entries(
        self,
        action: str,
        resource: str,
        resource_id: Any = None,
        customer_id: Any = None,
        fields: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """The audit entries of a change, for a statement that inserts them itself (a CTE with
        `shared.audit.AUDIT_FROM_JSON`'s shape); counted as recorded, like `audit_change`."""
        self.audited_changes += 1
        return self.pii.change_entries(self, action, resource, resource_id, customer_id, fields)

    async def audit_unaudited_write(self) -> None:
        """The safety net: a committed write request with no change entry gets a generic one."""
        if self.method not in WRITE_METHODS or self.audited_changes or self.replayed:
            return
        if self.privacy is None:
            return
        ids = [str(v) for v in self.path_params.values()]
        customer_id = self.path_params.get("customer_id")
        await self.audit_change(
            _METHOD_ACTION[self.method],
            self.route or "request",
            resource_id=",".join(ids) or None,
            customer_id=customer_id,
        )

    # -- consumers and jobs ------------------------------------------------------------------

    @classmethod
    def system(
        cls,
        session: AsyncSession,
        app_state: Any,
        subject: str | None = None,
    ) -> RequestContext:
        """A context for work no request started (a consumer, a scheduler)."""
        settings: ServiceSettings = app_state.settings
        return cls(
            session=session,
            outbox=app_state.outbox,
            principal=Principal(
                subject=subject or f"system:{settings.service_name}",
                role="system",
                scopes=frozenset(),
            ),
            settings=settings,
            clock=getattr(app_state, "clock", None) or SYSTEM_CLOCK,
            privacy=getattr(app_state, "privacy", None),
            request_id=correlation_id.get(),
            app_state=app_state,
        )


class ReadContext(RequestContext):
    """The context `read_context` builds: its session is made only when something asks for it.

    A read on `db(transaction=False)` (its own pooled connection, autocommit) never does, and
    making, entering and closing an unused session costs a request tens of microseconds.
    """

    _session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self.app_state.sessions()
        return self._session

    @session.setter
    def session(self, value: AsyncSession | None) -> None:
        self._session = value

    def in_transaction(self) -> bool:
        return self._session is not None and self._session.in_transaction()

    async def end(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        """What `_open` does after the endpoint (the unaudited-write net, commit, or roll back
        on error), for a session only if one was made or an unaudited write needs one; then
        the pooled connection back. Shielded from cancellation as FastAPI shields a
        dependency's exit."""
        try:
            if self._session is None and (
                exc_type is not None
                or self.method not in WRITE_METHODS
                or self.audited_changes
                or self.replayed
            ):
                return False  # a hot read, or an audited autocommit write: nothing to commit
            with CancelScope(shield=True):
                async with self.session as session:
                    try:
                        if exc_type is None:
                            await self.audit_unaudited_write()
                            if session.in_transaction():
                                await session.commit()
                        else:
                            await session.rollback()
                    except BaseException:
                        await session.rollback()
                        raise
        finally:
            self.release(exc)
        return False


def _route_of(request: Request) -> str | None:
    route = request.scope.get("route")
    return getattr(route, "path", None)


PurposeHeader = Annotated[
    str | None,
    Header(
        alias="X-Purpose",
        description="Why you access the data (e.g. a ticket number); recorded with every audit "
        "entry of the request (first 500 characters).",
        examples=["support ticket T-1042"],
    ),
]


def context(*scopes: str, anonymous: str | None = None, lazy: bool = False) -> Any:
    """Dependency: the request context of a caller holding every one of `scopes`.

    It owns the request's transaction: the work commits once after the endpoint returns (so a
    failed commit is an error response, never a success that did not persist) and rolls back
    on any error.

    `anonymous="public:survey-page"` builds the context of a page anyone may open (no token:
    the page checks its own signed link or signature), acting as that subject with no scopes,
    so its writes are audited like every other.

    `lazy=True` builds the same context for less, for a hot path on `ctx.db(transaction=False)`
    (its own pooled connection in autocommit): a read, or a write that is one statement. One
    plain dependency that is itself the bearer scheme (`_LazyContext`): not a generator
    (FastAPI wraps each generator dependency in a cancel scope and two context managers per
    request) nor a function with the scheme as a dependency of its own, and no session unless
    the endpoint asks for one
    (`ReadContext`, e.g. for an Idempotency-Key's claim). Its end (the unaudited-write net,
    commit or roll back of a session if one was made, the connection back) goes on the
    request's function-scope exit stack, where FastAPI puts a `scope="function"` generator's,
    so it runs at the same point: after the endpoint returns, before the response is sent.
    """
    if anonymous is not None:
        if scopes or lazy:
            raise ValueError("an anonymous context holds no scopes and is never lazy")
        subject = anonymous

        async def _build(request: Request) -> AsyncIterator[RequestContext]:
            principal = Principal(subject=subject, role=None, scopes=frozenset())
            async with _open(request, principal, request.headers.get("x-purpose")) as ctx:
                yield ctx

        return Depends(_build, scope="function")

    if lazy:
        return Depends(_LazyContext(scopes))

    async def _build(  # type: ignore[no-redef]
        request: Request, credentials: Bearer, purpose: PurposeHeader = None
    ) -> AsyncIterator[RequestContext]:
        # One dependency for the bearer check, the scopes and the context (each level of
        # dependencies costs every request); X-Purpose is documented on every operation here.
        principal = _caller(request, credentials, scopes)
        async with _open(request, principal, purpose) as ctx:
            yield ctx

    return Depends(_build, scope="function")


class _LazyContext(HTTPBearer):
    """`context(*scopes, lazy=True)`: the bearer scheme and the request context in one
    dependency. FastAPI solves each level of dependencies on every request (a bearer scheme
    below the context cost a request 10-20 µs more); as the scheme itself, this one still puts
    the operation's `security` in the OpenAPI document, under the same name."""

    def __init__(self, scopes: tuple[str, ...]) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=BEARER_DESCRIPTION)
        self.scopes = scopes

    async def __call__(  # type: ignore[override]
        self, request: Request, purpose: PurposeHeader = None
    ) -> RequestContext:
        principal = _caller(request, await super().__call__(request), self.scopes)
        ctx = ReadContext(
            session=None,  # type: ignore[arg-type]  # made on first use
            **_context_fields(request, principal, purpose),
        )
        stack: AsyncExitStack = request.scope["fastapi_function_astack"]
        stack.push_async_exit(ctx.end)
        return ctx


def builds_context(call: Any) -> bool:
    """Whether a dependency's callable is one `context()` returns: the request context's, so
    the operation's writes are audited and committed once (the security walk checks every
    write route with it)."""
    return isinstance(call, _LazyContext) or (
        getattr(call, "__qualname__", "") == "context.<locals>._build"
    )


def read_context(*scopes: str) -> Any:
    """Dependency: the context of a hot read, for an endpoint that reads on
    `ctx.db(transaction=False)` (its own pooled connection in autocommit): `context(*scopes,
    lazy=True)`, the same caller, checks, documentation and end as `context(*scopes)`."""
    return context(*scopes, lazy=True)


def _caller(request: Request, credentials: Any, scopes: tuple[str, ...]) -> Principal:
    """The authenticated caller, refused (403) unless it holds every one of `scopes`."""
    principal = authenticate(request, credentials)
    for scope in scopes:
        if not principal.has(scope):
            raise Forbidden(f"This operation needs the `{scope}` scope", required_scope=scope)
    return principal


def _context_fields(request: Request, principal: Principal, purpose: str | None) -> dict[str, Any]:
    """A request context's fields but its session."""
    state = request.app.state
    return {
        "outbox": state.outbox,
        "principal": principal,
        "settings": state.settings,
        "clock": clock_of(request.app),
        "privacy": getattr(state, "privacy", None),
        "request_id": correlation_id.get(),
        "purpose": purpose[:500] if purpose else None,
        "method": request.method,
        "route": _route_of(request),
        "path_params": dict(request.path_params),
        "app_state": state,
        "request": request,
    }


@asynccontextmanager
async def _open(
    request: Request, principal: Principal, purpose: str | None
) -> AsyncIterator[RequestContext]:
    """The context of one request in its own transaction, committed once after the endpoint."""
    state = request.app.state
    async with state.sessions() as session:
        ctx = RequestContext(session=session, **_context_fields(request, principal, purpose))
        failed: BaseException | None = None
        try:
            yield ctx
            await ctx.audit_unaudited_write()
            if session.in_transaction():  # a read on its own connection used none
                await session.commit()
        except BaseException as exc:
            failed = exc
            await session.rollback()
            raise
        finally:
            ctx.release(failed)
