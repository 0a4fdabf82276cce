"""`make demo`'s loader waits out 429 and 503 as their Retry-After says, gives up after a bounded
number of attempts, and reports what was stored and what failed, not what it planned.

Against a real HTTP server (the standard library's, in a thread) that refuses a few times.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from bench.demo import Sender, Tally, retry_delay


class Refusing(ThreadingHTTPServer):
    """Answers `refusals` times `status` with `retry_after` (after `delay` seconds), then 201;
    records arrival times. With `path`, only requests to it are refused (and recorded)."""

    def __init__(
        self,
        status: int,
        refusals: int,
        retry_after: str | None,
        path: str | None = None,
        delay: float = 0.0,
    ) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.status, self.refusals, self.retry_after = status, refusals, retry_after
        self.path, self.delay = path, delay
        self.arrivals: list[float] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Refusing

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        refuse = False
        if self.server.path in (None, self.path):
            with self.server.lock:
                self.server.arrivals.append(time.monotonic())
                refuse = len(self.server.arrivals) <= self.server.refusals
        if refuse:
            time.sleep(self.server.delay)
        status, body = (self.server.status, b"{}") if refuse else (201, b'{"id": "x"}')
        self.send_response(status)
        if refuse and self.server.retry_after is not None:
            self.send_header("Retry-After", self.server.retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serving(status: int, refusals: int, retry_after: str | None, **only: Any) -> Iterator[Refusing]:
    server = Refusing(status, refusals, retry_after, **only)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def limited() -> Iterator[Refusing]:
    """Rate limited twice, for one second each time."""
    yield from serving(429, 2, "1")


async def post(server: Refusing, sender: Sender, kind: str = "purchases") -> httpx.Response | None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        return await sender.send(client, kind, "POST", "/purchases", json={"amount": "1.00"})


async def test_a_429_is_retried_after_its_retry_after_and_the_record_is_stored(
    limited: Refusing,
) -> None:
    sender = Sender(Tally())
    response = await post(limited, sender)
    assert response is not None and response.status_code == 201
    assert len(limited.arrivals) == 3
    gaps = [b - a for a, b in zip(limited.arrivals, limited.arrivals[1:], strict=False)]
    assert all(gap >= 0.95 for gap in gaps), gaps  # Retry-After: 1 honoured each time
    assert sender.tally.created == {"purchases": 1}
    assert sender.tally.retried == {"429": 2}
    assert not sender.tally.failed


async def test_a_503_is_retried_like_a_429() -> None:
    for server in serving(503, 1, "0"):
        sender = Sender(Tally())
        assert await post(server, sender) is not None
        assert sender.tally.retried == {"503": 1}
        assert sender.tally.created == {"purchases": 1}


async def test_after_the_last_attempt_the_record_counts_as_failed_with_its_status() -> None:
    for server in serving(429, 100, "0"):
        sender = Sender(Tally(), max_attempts=4)
        assert await post(server, sender) is None
        assert len(server.arrivals) == 4
        assert sender.tally.failed == {"purchases": {"429": 1}}
        assert sender.tally.retried == {"429": 3}
        assert not sender.tally.created


async def test_a_wait_is_capped_at_max_wait() -> None:
    for server in serving(429, 1, "3600"):
        sender = Sender(Tally(), max_wait=0.2)
        started = time.monotonic()
        assert await post(server, sender) is not None
        assert time.monotonic() - started < 5


async def test_other_errors_are_not_retried() -> None:
    for server in serving(409, 100, None):
        sender = Sender(Tally())
        assert await post(server, sender, "complaints") is None
        assert len(server.arrivals) == 1
        assert sender.tally.failed == {"complaints": {"409": 1}}


async def test_one_refusal_pauses_the_other_requests_too() -> None:
    for server in serving(429, 1, "1"):
        sender = Sender(Tally())
        first = asyncio.create_task(post(server, sender))
        await asyncio.sleep(0.3)  # the first request got its 429 (Retry-After: 1)
        assert len(server.arrivals) == 1
        second = await post(server, sender)
        assert await first is not None and second is not None
        assert len(server.arrivals) == 3  # nothing but the first was refused
        assert min(server.arrivals[1:]) - server.arrivals[0] >= 0.95


def test_retry_after_as_seconds_as_a_date_and_absent() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert retry_delay("7", 0, now) == 7.0
    assert retry_delay(format_datetime(now + timedelta(seconds=30), usegmt=True), 0, now) == 30.0
    assert retry_delay(format_datetime(now - timedelta(seconds=30), usegmt=True), 0, now) == 0.0
    assert [retry_delay(None, attempt) for attempt in range(3)] == [0.5, 1.0, 2.0]
    assert retry_delay("soon", 1) == 1.0  # unreadable: back off as if absent


def test_the_report_says_what_was_stored_and_what_failed() -> None:
    tally = Tally()
    tally.created.update({"customers": 2, "purchases": 5})
    tally.existing.update({"customers": 298})
    tally.failed["purchases"].update({"429": 3, "409": 1})
    tally.retried.update({"429": 40})
    assert tally.lines() == [
        "customers: 300 stored (2 new, 298 already there)",
        "purchases: 5 stored (5 new, 0 already there); 4 failed (1 x 409, 3 x 429)",
        "retried after Retry-After: 40 x 429",
    ]
    assert tally.failures == 4


async def test_a_record_refused_while_others_get_through_is_not_given_up() -> None:
    """Refusals count towards giving up only while no request of the loader gets through: a
    record that keeps losing the race for the few requests a limit lets through at once is
    still stored, as long as the service takes the others."""
    # `/unlucky` is refused four times, each answer late (the others of its round first).
    for server in serving(429, 4, "1", path="/unlucky", delay=0.2):
        sender = Sender(Tally(), max_attempts=3)
        async with httpx.AsyncClient(base_url=server.url) as client:
            unlucky = asyncio.create_task(
                sender.send(client, "purchases", "POST", "/unlucky", json={"amount": "1.00"})
            )
            while not unlucky.done():  # the other records of the load, one after another
                await sender.send(client, "interactions", "POST", "/other", json={})
            assert await unlucky is not None
        assert len(server.arrivals) == 5  # refused four times, more than max_attempts, stored
        assert sender.tally.failed == {}
        assert sender.tally.created["purchases"] == 1
