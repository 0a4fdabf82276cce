"""What holds with several replicas and other settings: the jobs run by two replicas at once
do everything once; with negative balances off a reversal writes off what no lot covers; the
migrations build exactly the tables the service declares and go down and up again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI

from services.loyalty import consumers
from services.loyalty.config import Settings
from services.loyalty.main import create_app
from services.loyalty.models import metadata
from shared.context import ManualClock, RequestContext
from shared.db import create_engine
from shared.migrate import alembic_config
from shared.outbox import build_event
from tests.conftest import settings_for
from tests.helpers import serve
from tests.loyalty.conftest import (
    FAST,
    events_of,
    ledger,
    member,
    publish,
    purchase,
    redeem,
    refund,
    run_jobs,
)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


async def test_two_replicas_running_the_jobs_at_once_expire_and_announce_once(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customers = [uuid.uuid4() for _ in range(20)]
    clock.set(at(2036, 2, 10))
    for customer in customers:
        await publish(app, producer, purchase(customer, "100.00", clock.now()), copies=1)
    replica = create_app(Settings(**{**FAST, "consumers_enabled": False}))
    replica.state.clock = other = ManualClock()
    async for _ in serve(replica):
        for when in (at(2037, 2, 5), at(2037, 3, 1)):  # the notice, then the expiry
            clock.set(when)
            other.set(when)
            await asyncio.gather(run_jobs(app), run_jobs(replica))
    for customer in customers:
        assert len(await events_of(app, "points_expiring", customer)) == 1
        assert len(await events_of(app, "points_expired", customer)) == 1
        book = await ledger(client, customer)
        assert [(e["kind"], e["points"]) for e in book["items"]] == [
            ("earn", 100),
            ("expire", -100),
        ]


async def test_without_negative_balances_a_reversal_writes_off_what_no_lot_covers(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    bought = purchase(customer, "100.00", clock.now())
    await publish(app, producer, bought)
    clock.advance(days=8)
    assert (await redeem(client, customer, points=90)).status_code == 201

    # A replica configured without negative balances applies the refund (its handler, its
    # transaction, the shared database), as its consumer would.
    strict = create_app(
        Settings(**{**FAST, "consumers_enabled": False}, negative_balance_allowed=False)
    )
    strict.state.clock = clock
    async for _ in serve(strict):
        event = build_event(refund(bought, "100.00", clock.now()), "/kehu/test")

        def context_of(session: Any) -> RequestContext:
            return RequestContext.system(session, strict.state, subject=consumers.SUBJECT)

        handle = consumers.handlers(context_of)[event.type]
        async with strict.state.sessions.begin() as session:
            await handle(session, event)
    book = await ledger(client, customer)
    reversal = book["items"][-1]
    assert (reversal["points"], reversal["uncovered"], reversal["negative"]) == (-10, 90, False)
    assert reversal["details"]["written_off"] == 90
    assert (await member(client, customer))["balance"]["debt"] == 0


async def test_the_migrations_match_the_tables_and_go_down_and_up(fresh_database: Any) -> None:
    url = await fresh_database("loyalty")
    engine = create_engine(settings_for(url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
        assert diff == []
        config = alembic_config("loyalty", url)
        await asyncio.to_thread(command.downgrade, config, "base")
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as conn:
            levels = (
                await conn.exec_driver_sql("SELECT code FROM levels ORDER BY threshold")
            ).all()
        assert [r[0] for r in levels] == ["member", "silver", "gold"]
    finally:
        await engine.dispose()
