"""Which handler failures the consumer runner retries and which it parks on the DLQ."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError as SADBAPIError

from shared.consumer import _is_infrastructure_error


def test_deadlocks_and_serialization_failures_are_retried_not_parked() -> None:
    for error in (
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize"),
    ):
        wrapped = SADBAPIError("UPDATE ...", {}, error)
        assert _is_infrastructure_error(wrapped), type(error).__name__
    assert not _is_infrastructure_error(ValueError("a real bug in the handler"))
    unique = SADBAPIError("INSERT ...", {}, asyncpg.exceptions.UniqueViolationError("dup"))
    assert not _is_infrastructure_error(unique)


def test_lost_connections_and_timeouts_are_retried_not_parked() -> None:
    assert _is_infrastructure_error(ConnectionResetError(104, "Connection reset by peer"))
    assert _is_infrastructure_error(TimeoutError())
    dropped = SADBAPIError("SELECT 1", {}, OSError("gone"), connection_invalidated=True)
    assert _is_infrastructure_error(dropped)
    cancelled = SADBAPIError("UPDATE ...", {}, asyncpg.exceptions.QueryCanceledError("timeout"))
    assert _is_infrastructure_error(cancelled), "statement timeout (57014)"
    assert not _is_infrastructure_error(KeyError("customer_id")), "a bad payload is parked"
