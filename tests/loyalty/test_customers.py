"""Members from customers' events: enrolment, the birthday bonus from the profile's important
dates, merges, erasure and GDPR export, ABC tiers; and the programme's liability report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.loyalty.models import audit_log, birthdays
from shared.context import ManualClock
from shared.contracts.analytics import CustomerTierChanged
from shared.contracts.customers import (
    CustomerCreated,
    CustomerDimensions,
    CustomerErased,
    CustomerMerged,
    CustomerUpdated,
    ImportantDate,
)
from tests.loyalty.conftest import (
    ADMIN,
    headers,
    ledger,
    member,
    publish,
    purchase,
    redeem,
    run_jobs,
)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def born(customer: uuid.UUID, month: int, day: int, entered: datetime) -> CustomerCreated:
    return CustomerCreated(
        customer_id=customer,
        occurred_at=entered,
        dimensions=CustomerDimensions(
            kind="person",
            customer_number=f"C-{uuid.uuid4().hex[:6]}",
            important_dates=[ImportantDate(kind="birthday", month=month, day=day)],
        ),
    )


async def enrol(client: httpx.AsyncClient, customer: uuid.UUID) -> httpx.Response:
    return await client.post("/members", json={"customer_id": str(customer)}, headers=ADMIN)


async def bonuses(client: httpx.AsyncClient, customer: uuid.UUID) -> list[tuple[str, int]]:
    book = await ledger(client, customer)
    return [(e["at"][:4], e["points"]) for e in book["items"] if e["kind"] == "bonus"]


async def test_post_members_enrols_once_at_the_base_level(client: httpx.AsyncClient) -> None:
    customer = uuid.uuid4()
    first = await enrol(client, customer)
    assert first.status_code == 201, first.text
    assert first.json()["level"] == "member" and first.json()["enrolled_via"] == "api"
    assert first.json()["balance"]["spendable"] == 0
    again = await enrol(client, customer)
    assert again.status_code == 200 and again.json()["created_at"] == first.json()["created_at"]
    bad = await client.post("/members", json={"customer_id": "nope"}, headers=ADMIN)
    assert bad.status_code == 422


async def test_the_birthday_bonus_comes_once_a_year_for_dates_known_a_month_ahead(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    known, late, erased = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    clock.set(at(2030, 5, 20))
    await publish(
        app,
        producer,
        born(known, 6, 10, at(2030, 4, 1)),
        born(late, 6, 10, at(2030, 5, 25)),  # entered 16 days before the birthday
        born(erased, 6, 10, at(2030, 4, 1)),
    )
    for customer in (known, late, erased):
        assert (await enrol(client, customer)).status_code == 201
    await publish(app, producer, CustomerErased(customer_id=erased, occurred_at=clock.now()))

    clock.set(at(2030, 6, 9, 23))
    await run_jobs(app)
    assert await bonuses(client, known) == []
    clock.set(at(2030, 6, 10, 8))
    await run_jobs(app)
    await run_jobs(app)  # once, however many passes or replicas
    assert await bonuses(client, known) == [("2030", 100)]
    assert (await member(client, known))["balance"]["available"] == 100  # spendable at once
    assert await bonuses(client, late) == []
    assert await bonuses(client, erased) == []

    clock.set(at(2031, 6, 11, 9))  # a pass a day late still finds it
    await run_jobs(app)
    assert await bonuses(client, known) == [("2030", 100), ("2031", 100)]
    assert await bonuses(client, late) == [("2031", 100)]
    assert await bonuses(client, erased) == []


async def test_a_changed_birthday_counts_as_entered_when_it_changed(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    clock.set(at(2035, 1, 10))
    await publish(app, producer, born(customer, 3, 1, at(2035, 1, 1)))
    await enrol(client, customer)
    moved = CustomerUpdated(
        customer_id=customer,
        occurred_at=at(2035, 2, 20),  # 9 days before the new date
        changed_fields=["important_dates"],
        dimensions=CustomerDimensions(
            kind="person",
            customer_number="C-1",
            important_dates=[ImportantDate(kind="birthday", month=3, day=1)],
        ),
    )
    same = moved.model_copy(update={"occurred_at": at(2035, 2, 25), "changed_fields": ["tags"]})
    await publish(app, producer, moved, same)
    clock.set(at(2035, 3, 1, 9))
    await run_jobs(app)
    assert await bonuses(client, customer) == [("2035", 100)]  # the date did not change

    other = uuid.uuid4()
    await publish(app, producer, born(other, 3, 2, at(2035, 1, 1)))
    await enrol(client, other)
    changed = moved.model_copy(
        update={
            "customer_id": other,
            "dimensions": moved.dimensions.model_copy(
                update={"important_dates": [ImportantDate(kind="birthday", month=3, day=3)]}
            ),
        }
    )
    await publish(app, producer, changed)
    clock.set(at(2035, 3, 3, 9))
    await run_jobs(app)
    assert await bonuses(client, other) == []  # changed 11 days before


async def test_merge_moves_the_duplicates_lots_and_ledger_to_the_survivor(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    survivor, duplicate = uuid.uuid4(), uuid.uuid4()
    await publish(app, producer, purchase(survivor, "100.00", clock.now()))
    await publish(app, producer, purchase(duplicate, "2500.00", clock.now()))
    clock.advance(days=8)
    assert (await redeem(client, duplicate, points=200)).status_code == 201
    await publish(
        app,
        producer,
        CustomerMerged(customer_id=survivor, occurred_at=clock.now(), merged_customer_id=duplicate),
    )
    body = await member(client, survivor)
    assert body["balance"]["spendable"] == 100 + 2500 - 200
    assert body["level"] == "silver"  # the duplicate's level
    assert (await member(client, duplicate))["customer_id"] == str(survivor)
    book = await ledger(client, survivor)
    assert sorted(e["points"] for e in book["items"]) == [-200, 100, 2500]
    assert len(book["lots"]) == 2

    # The duplicate's later events land on the survivor.
    await publish(app, producer, purchase(duplicate, "10.00", clock.now()))
    assert (await member(client, survivor))["balance"]["pending"] == 12  # x1.25 at silver


async def test_gdpr_export_masking_and_erasure(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    await publish(app, producer, born(customer, 12, 24, clock.now() - timedelta(days=60)))
    await publish(app, producer, purchase(customer, "300.00", clock.now()))
    assert (await member(client, customer))["birthday"] == "12-24"
    analyst = await client.get(f"/members/{customer}", headers=headers("analyst"))
    assert analyst.status_code == 200 and analyst.json()["birthday"] is None
    async with app.state.engine.connect() as conn:
        stored = await conn.scalar(
            sa.text("SELECT month_day FROM birthdays WHERE customer_id = :c"), {"c": customer}
        )
        reads = await conn.scalar(
            sa.select(sa.func.count()).where(
                audit_log.c.customer_id == str(customer), audit_log.c.action == "read_pii"
            )
        )
    assert stored and "12-24" not in stored  # sealed at rest
    assert reads == 1  # the admin's read, not the analyst's masked one

    export = await client.get(f"/customers/{customer}/export", headers=ADMIN)
    assert export.status_code == 200, export.text
    doc = export.json()
    assert doc["status"] == "ok" and doc["service"] == "loyalty"
    assert [e["points"] for e in doc["data"]["ledger"]] == [300]
    assert doc["data"]["birthday"][0]["month_day"] == "12-24"
    status = await client.get(f"/customers/{customer}/erasure", headers=ADMIN)
    assert status.json()["status"] == "pending"
    nobody = await client.get(f"/customers/{uuid.uuid4()}/export", headers=ADMIN)
    assert nobody.json()["status"] == "holds_nothing"

    await publish(app, producer, CustomerErased(customer_id=customer, occurred_at=clock.now()))
    status = await client.get(f"/customers/{customer}/erasure", headers=ADMIN)
    assert status.json()["status"] == "erased" and status.json()["kept"]
    assert (await member(client, customer))["birthday"] is None
    async with app.state.engine.connect() as conn:
        left = await conn.scalar(
            sa.select(sa.func.count()).where(birthdays.c.customer_id == customer)
        )
    assert left == 0
    # A profile update arriving after the erasure stores nothing again.
    await publish(app, producer, born(customer, 12, 24, clock.now()))
    assert (await member(client, customer))["birthday"] is None
    refused = await redeem(client, customer, points=1)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/customer-erased")

    # A purchase of a customer erased before it ever earned makes an erased member.
    gone = uuid.uuid4()
    await publish(app, producer, CustomerErased(customer_id=gone, occurred_at=clock.now()))
    await publish(app, producer, purchase(gone, "50.00", clock.now()))
    assert (await member(client, gone))["erased_at"] is not None
    again = await client.post("/members", json={"customer_id": str(gone)}, headers=ADMIN)
    assert again.status_code == 409


async def test_the_abc_tier_shows_on_the_member_newest_first(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    assert (await enrol(client, customer)).status_code == 201

    def tier(value: str, when: datetime) -> CustomerTierChanged:
        return CustomerTierChanged(
            customer_id=customer,
            occurred_at=when,
            tier=value,  # type: ignore[arg-type]
            previous_tier=None,
            contribution="100.00",  # type: ignore[arg-type]
        )

    await publish(app, producer, tier("A", clock.now()))
    await publish(app, producer, tier("C", clock.now() - timedelta(days=1)))
    assert (await member(client, customer))["tier"] == "A"


async def test_the_liability_report_counts_outstanding_points_and_their_expiry(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, producer: AIOKafkaProducer
) -> None:
    clock.set(at(2040, 3, 15))
    before = (await client.get("/reports/liability", headers=ADMIN)).json()
    customer = uuid.uuid4()
    await publish(app, producer, purchase(customer, "300.00", at(2040, 3, 1)))
    await publish(app, producer, purchase(customer, "200.00", at(2040, 3, 14)))
    response = await client.get("/reports/liability", headers=headers("analyst"))
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["available"] - before["available"] == 300  # past the window
    assert after["pending"] - before["pending"] == 200
    assert after["currency"] == "CNY"
    months = {m["month"]: m for m in after["expiring_by_month"]}
    previous = {m["month"]: m["points"] for m in before["expiring_by_month"]}
    assert months["2041-03"]["points"] - previous.get("2041-03", 0) == 500
    assert Decimal(after["value"]) == after["outstanding"] * Decimal("0.01")
