"""Webhook subscriptions against the real stack: events from Kafka to a verifying receiver."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.subscriptions.delivery import (
    AttemptResult,
    enqueue,
    prune_deliveries,
    record_attempt,
)
from services.subscriptions.models import deliveries as deliveries_table
from services.subscriptions.models import inbox as inbox_table
from shared.auth import issue_token
from shared.contracts.complaints import ComplaintReceived, ComplaintResolved
from shared.contracts.customers import CustomerArchived
from shared.events.envelope import to_kafka
from shared.events.registry import EventContract
from shared.outbox import build_event
from shared.settings import ServiceSettings
from tests.conftest import auth
from tests.helpers import eventually, header, read_topic
from tests.subscriptions.conftest import RETRY_S, settings
from tests.subscriptions.receiver import Receiver, running

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
PROBLEM = "application/problem+json"


async def publish(producer: AIOKafkaProducer, *contracts: EventContract) -> list[str]:
    """Publish as the domain services' relays do; returns the CloudEvent ids."""
    ids = []
    for contract in contracts:
        event = build_event(contract, "/kehu/test")
        key, value, headers = to_kafka(event)
        await producer.send_and_wait(contract.topic, value=value, key=key, headers=headers)
        ids.append(event.id)
    return ids


def now() -> datetime:
    return datetime.now(UTC)


def received(customer: uuid.UUID) -> ComplaintReceived:
    return ComplaintReceived(
        customer_id=customer,
        occurred_at=now(),
        complaint_id=uuid.uuid4(),
        channel="email",
        category="delivery",
        severity="high",
        first_response_due_at=now() + timedelta(hours=4),
        resolution_due_at=now() + timedelta(days=2),
    )


def resolved(customer: uuid.UUID) -> ComplaintResolved:
    return ComplaintResolved(
        customer_id=customer,
        occurred_at=now(),
        complaint_id=uuid.uuid4(),
        category="delivery",
        severity="high",
        resolution_seconds=3600,
        resolution_met=True,
    )


async def subscribe(
    client: httpx.AsyncClient, receiver: Receiver, customer: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    body = {
        "url": receiver.url,
        "event_types": ["kehu.complaint.*"],
        "customer_ids": [str(customer)],
        "description": "test receiver",
        **extra,
    }
    response = await client.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    receiver.secrets.append(created["secret"])
    return created


async def deliveries(client: httpx.AsyncClient, sub_id: str, **params: str) -> list[dict]:
    response = await client.get(f"/subscriptions/{sub_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def detail(client: httpx.AsyncClient, sub_id: str, delivery_id: str) -> dict[str, Any]:
    response = await client.get(f"/subscriptions/{sub_id}/deliveries/{delivery_id}")
    assert response.status_code == 200, response.text
    return response.json()


# -- CRUD, validation, scopes ------------------------------------------------------------------


async def test_subscription_crud_with_whsec_secret_and_etags(client: httpx.AsyncClient) -> None:
    receiver = Receiver()
    receiver.port = 9  # never called: nothing is published for this customer
    created = await subscribe(client, receiver, uuid.uuid4(), event_types=["kehu.customer.*"])
    assert created["secret"].startswith("whsec_")
    assert created["enabled"] is True and created["version"] == 1
    sub_id = created["id"]

    got = await client.get(f"/subscriptions/{sub_id}")
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    assert "secret" not in got.json()
    secret = await client.get(f"/subscriptions/{sub_id}/secret")
    assert secret.json()["secret"] == created["secret"]

    patch = {"event_types": ["kehu.customer.created.v1"], "customer_ids": None}
    missing = await client.patch(f"/subscriptions/{sub_id}", json=patch)
    assert missing.status_code == 428
    stale = await client.patch(f"/subscriptions/{sub_id}", json=patch, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    updated = await client.patch(
        f"/subscriptions/{sub_id}", json=patch, headers={"If-Match": '"1"'}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["event_types"] == ["kehu.customer.created.v1"]
    assert updated.json()["customer_ids"] is None
    assert updated.headers["etag"] == '"2"'

    listed, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/subscriptions", params=params)).json()
        listed += [s["id"] for s in page["items"]]
        cursor, pages = page["next_cursor"], pages + 1
        if cursor is None or pages > 500:
            break
    assert sub_id in listed and len(listed) == len(set(listed))

    assert (await client.delete(f"/subscriptions/{sub_id}")).status_code == 204
    gone = await client.get(f"/subscriptions/{sub_id}")
    assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM


async def test_filters_matching_no_event_type_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/subscriptions",
        json={"url": "http://127.0.0.1:9/x", "event_types": ["kehu.complain.*", "kehu.*"]},
    )
    assert response.status_code == 422
    assert response.json()["unmatched"] == ["kehu.complain.*"]
    bad = await client.post(
        "/subscriptions", json={"url": "not a url", "event_types": ["Kehu Events"]}
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"body.url", "body.event_types.0"} <= fields


async def test_readers_cannot_create_or_read_secrets(client: httpx.AsyncClient) -> None:
    analyst = auth(issue_token(ServiceSettings(), "analyst"))
    response = await client.post(
        "/subscriptions",
        json={"url": "http://127.0.0.1:9/x", "event_types": ["*"]},
        headers=analyst,
    )
    assert response.status_code == 403
    assert response.json()["required_scope"] == "subscriptions:write"
    secret = await client.get(f"/subscriptions/{uuid.uuid4()}/secret", headers=analyst)
    assert secret.status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "https://192.168.1.10/hook",
        "https://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://100.64.0.1/hook",
    ],
)
async def test_private_range_urls_are_refused(client: httpx.AsyncClient, url: str) -> None:
    response = await client.post("/subscriptions", json={"url": url, "event_types": ["*"]})
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"] == PROBLEM
    assert body["type"].endswith("/unsafe-target") and body["field"] == "url"


# -- delivery ----------------------------------------------------------------------------------


async def test_matching_events_arrive_signed_and_verified_in_order(
    client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer, other = uuid.uuid4(), uuid.uuid4()
    async with running(Receiver()) as receiver:
        sub = await subscribe(client, receiver, customer)
        wanted = await publish(producer, received(customer), resolved(customer), received(customer))
        # Not matching: another customer, and a customer event for the same customer.
        await publish(
            producer, received(other), CustomerArchived(customer_id=customer, occurred_at=now())
        )

        async def all_arrived() -> bool:
            return len(receiver.accepted) >= 3

        await eventually(all_arrived, timeout=60)
        await eventually(lambda: _delivered(client, sub["id"], 3), timeout=10)

    assert [r.event["id"] for r in receiver.received] == wanted
    for request in receiver.received:
        assert request.verified_by == [sub["secret"]]
        assert request.headers["content-type"] == "application/cloudevents+json"
        event = request.event
        assert event["specversion"] == "1.0" and event["subject"] == str(customer)
        assert event["type"].startswith("kehu.complaint.")
        assert event["data"]["customer_id"] == str(customer)
    logged = await deliveries(client, sub["id"])
    assert {d["status"] for d in logged} == {"succeeded"}
    assert sorted(d["id"] for d in logged) == sorted(r.webhook_id for r in receiver.received)
    assert all(d["attempt_count"] == 1 and d["last_status_code"] == 200 for d in logged)


async def test_a_redelivered_kafka_event_is_sent_once(
    client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver()) as receiver:
        sub = await subscribe(client, receiver, customer)
        event = build_event(received(customer), "/kehu/test")
        key, value, headers = to_kafka(event)
        for _ in range(2):  # what a relay retry after a lost ack looks like
            await producer.send_and_wait("kehu.complaints", value=value, key=key, headers=headers)
        # Same key, same partition: once the marker is delivered the duplicate was consumed.
        [marker] = await publish(producer, resolved(customer))
        await eventually(lambda: _delivered(client, sub["id"], 2), timeout=60)
    assert [r.event["id"] for r in receiver.received] == [event.id, marker]


async def _delivered(client: httpx.AsyncClient, sub_id: str, count: int) -> bool:
    return len(await deliveries(client, sub_id, status="succeeded")) >= count


async def test_failing_twice_then_succeeding_delivers_once_more_with_three_attempts_logged(
    client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver(script=[500, 503])) as receiver:
        sub = await subscribe(client, receiver, customer)
        [event_id] = await publish(producer, resolved(customer))
        await eventually(lambda: _delivered(client, sub["id"], 1), timeout=60)

    assert [r.status for r in receiver.received] == [500, 503, 200]
    assert len(receiver.accepted) == 1
    assert {r.webhook_id for r in receiver.received} == {receiver.received[0].webhook_id}
    assert all(r.verified_by for r in receiver.received)
    [delivery] = await deliveries(client, sub["id"])
    assert delivery["event_id"] == event_id and delivery["attempt_count"] == 3
    log = await detail(client, sub["id"], delivery["id"])
    assert [a["status_code"] for a in log["attempts"]] == [500, 503, 200]
    assert [a["attempt"] for a in log["attempts"]] == [1, 2, 3]
    assert [a["error"] for a in log["attempts"]] == ["HTTP 500", "HTTP 503", None]
    assert all(a["latency_ms"] >= 0 for a in log["attempts"])
    times = [datetime.fromisoformat(a["attempted_at"]) for a in log["attempts"]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap >= RETRY_S * 0.85 for gap in gaps), gaps  # backoff, not a hot loop
    sub_now = (await client.get(f"/subscriptions/{sub['id']}")).json()
    assert sub_now["enabled"] and sub_now["failing_since"] is None


async def test_later_events_of_a_customer_wait_while_an_earlier_one_is_retried(
    client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver(script=[500])) as receiver:
        sub = await subscribe(client, receiver, customer)
        ids = await publish(producer, received(customer), resolved(customer), received(customer))
        await eventually(lambda: _delivered(client, sub["id"], 3), timeout=60)

    assert [r.event["id"] for r in receiver.received] == [ids[0], ids[0], ids[1], ids[2]]
    assert [r.status for r in receiver.received] == [500, 200, 200, 200]


async def test_rotation_keeps_deliveries_verifiable_with_either_secret(
    client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver()) as receiver:
        sub = await subscribe(client, receiver, customer)
        old = sub["secret"]
        rotated = await client.post(
            f"/subscriptions/{sub['id']}/secret/rotate", json={"grace_period_s": 3600}
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new != old and new.startswith("whsec_")
        assert rotated.json()["previous_secret_expires_at"] is not None
        receiver.secrets.append(new)

        await publish(producer, received(customer))
        await eventually(lambda: _delivered(client, sub["id"], 1), timeout=60)
        during = receiver.received[-1]
        assert sorted(during.verified_by) == sorted([old, new])
        assert len(during.headers["webhook-signature"].split(" ")) == 2

        # Grace 0: the previous secret stops signing at once.
        await client.post(f"/subscriptions/{sub['id']}/secret/rotate", json={"grace_period_s": 0})
        newest = (await client.get(f"/subscriptions/{sub['id']}/secret")).json()
        assert newest["previous_secret_expires_at"] is None
        receiver.secrets.append(newest["secret"])
        await publish(producer, received(customer))
        await eventually(lambda: _delivered(client, sub["id"], 2), timeout=30)
        after = receiver.received[-1]
        assert after.verified_by == [newest["secret"]]
        assert len(after.headers["webhook-signature"].split(" ")) == 1


async def test_replay_one_delivery_and_everything_since_a_time(
    client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver()) as receiver:
        sub = await subscribe(client, receiver, customer)
        started = now()
        await publish(producer, received(customer), resolved(customer))
        await eventually(lambda: _delivered(client, sub["id"], 2), timeout=60)
        first = receiver.received[0]

        replay = await client.post(
            f"/subscriptions/{sub['id']}/deliveries/{first.webhook_id}/replay"
        )
        assert replay.status_code == 200 and replay.json()["status"] == "pending"

        async def replayed_one() -> bool:
            return len(receiver.accepted) == 3

        await eventually(replayed_one, timeout=30)
        assert receiver.received[2].webhook_id == first.webhook_id
        assert receiver.received[2].body == first.body

        everything = await client.post(
            f"/subscriptions/{sub['id']}/replay",
            json={"since": (started - timedelta(seconds=5)).isoformat()},
        )
        assert everything.json() == {"replayed": 2}

        async def replayed_all() -> bool:
            return len(receiver.accepted) == 5

        await eventually(replayed_all, timeout=30)
    assert [r.event["id"] for r in receiver.received[3:]] == [
        r.event["id"] for r in receiver.received[:2]
    ]
    missing = await client.post(f"/subscriptions/{sub['id']}/deliveries/{uuid.uuid4()}/replay")
    assert missing.status_code == 404


async def test_ping_sends_a_signed_test_event_and_reports_the_outcome(
    client: httpx.AsyncClient,
) -> None:
    async with running(Receiver(script=[200, 502])) as receiver:
        sub = await subscribe(client, receiver, uuid.uuid4())
        ok = await client.post(f"/subscriptions/{sub['id']}/ping")
        failed = await client.post(f"/subscriptions/{sub['id']}/ping")
    assert ok.status_code == 200, ok.text
    assert ok.json()["success"] is True
    assert ok.json()["delivery"]["attempts"][0]["status_code"] == 200
    assert failed.json()["success"] is False
    assert failed.json()["delivery"]["status"] == "failed"  # pings are not retried
    assert failed.json()["delivery"]["attempts"][0]["error"] == "HTTP 502"
    assert receiver.received[0].event["type"] == "kehu.webhook.ping.v1"
    assert receiver.received[0].verified_by == [sub["secret"]]


async def test_410_disables_the_subscription_with_an_event(
    app: FastAPI, client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver(default=410, gate=asyncio.Event())) as receiver:
        sub = await subscribe(client, receiver, customer)
        await publish(producer, received(customer), resolved(customer))
        # The 410 waits until both events are queued: the consumer may take them in two
        # batches, and an event consumed after the subscription is disabled is not queued.
        await eventually(lambda: _listed(client, sub["id"], 2), timeout=8)
        assert receiver.gate is not None
        receiver.gate.set()
        await eventually(lambda: _disabled(client, sub["id"]), timeout=60)
        [while_disabled] = await publish(producer, received(customer))

        async def consumed() -> bool:  # matched against the subscription while it is disabled
            async with app.state.sessions() as session:
                found = await session.execute(
                    sa.select(inbox_table.c.event_id).where(
                        inbox_table.c.event_id == while_disabled
                    )
                )
                return found.first() is not None

        await eventually(consumed, timeout=60)
        state = (await client.get(f"/subscriptions/{sub['id']}")).json()
        assert state["disabled_reason"] == "endpoint_gone"
        event = await _disabled_event(sub["id"])
        assert event["reason"] == "endpoint_gone" and event["last_status_code"] == 410
        assert len(receiver.received) == 1  # nothing more is sent to a gone endpoint

        # Re-enabling resumes the deliveries that waited, in order.
        receiver.default = 200
        enable = await client.patch(
            f"/subscriptions/{sub['id']}",
            json={"enabled": True},
            headers={"If-Match": f'"{state["version"]}"'},
        )
        assert enable.status_code == 200 and enable.json()["disabled_reason"] is None
        await eventually(lambda: _delivered(client, sub["id"], 1), timeout=60)
    # The event published while disabled was not queued; the one that waited was delivered.
    statuses = [(d["event_type"], d["status"]) for d in await deliveries(client, sub["id"])]
    assert statuses == [
        ("kehu.complaint.resolved.v1", "succeeded"),
        ("kehu.complaint.received.v1", "failed"),  # the one answered 410
    ]


async def test_endpoint_failing_longer_than_disable_after_is_disabled_with_reason(
    client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver(default=500)) as receiver:
        sub = await subscribe(client, receiver, customer)
        await publish(producer, resolved(customer))
        await eventually(lambda: _disabled(client, sub["id"]), timeout=60)
    state = (await client.get(f"/subscriptions/{sub['id']}")).json()
    assert state["disabled_reason"] == "failing"
    assert len(receiver.received) >= 3
    event = await _disabled_event(sub["id"])
    assert event["reason"] == "failing" and "HTTP 500" in event["detail"]
    assert event["failing_since"] is not None


async def _listed(client: httpx.AsyncClient, sub_id: str, count: int) -> bool:
    return len(await deliveries(client, sub_id)) >= count


async def _disabled(client: httpx.AsyncClient, sub_id: str) -> bool:
    return (await client.get(f"/subscriptions/{sub_id}")).json()["enabled"] is False


async def _disabled_event(sub_id: str) -> dict[str, Any]:
    """The `subscription.disabled` event of `sub_id` on Kafka (published by the relay)."""
    for _ in range(20):
        for record in await read_topic(BOOTSTRAP, "kehu.subscriptions", at_least=1):
            if header(record, "ce_type") == "kehu.subscription.disabled.v1":
                data = json.loads(record.value)
                if data["subscription_id"] == sub_id:
                    assert record.key == sub_id.encode()
                    return dict(data)
        await asyncio.sleep(0.5)
    raise AssertionError(f"no subscription.disabled event for {sub_id}")


async def test_docs_portal_catalog_and_asyncapi_are_served_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    anonymous = {"Authorization": ""}
    spec = await client.get("/asyncapi.json", headers=anonymous)
    assert spec.status_code == 200 and spec.json()["asyncapi"] == "3.0.0"
    assert (await client.get("/asyncapi.yaml", headers=anonymous)).text.startswith("asyncapi:")
    page = await client.get("/catalog/kehu.complaint.resolved.v1", headers=anonymous)
    assert page.status_code == 200 and "## Versioning" in page.text
    assert (await client.get("/catalog/kehu.nope.v1", headers=anonymous)).status_code == 404
    portal = await client.get("/portal", headers=anonymous)
    assert portal.status_code == 200
    for link in ("/asyncapi.yaml", "/catalog", ":8001/docs", ":8005/openapi.json", "Bearer"):
        assert link in portal.text


# -- retry schedule, exhaustion, size limit, retention -----------------------------------------


async def _new_delivery(app: FastAPI, client: httpx.AsyncClient, **values: Any) -> tuple:
    receiver = Receiver()
    receiver.port = 9
    sub = await subscribe(client, receiver, uuid.uuid4())
    delivery_id = uuid.uuid4()
    async with app.state.sessions.begin() as session:
        await session.execute(
            sa.insert(deliveries_table).values(
                id=delivery_id,
                subscription_id=uuid.UUID(sub["id"]),
                event_id=str(uuid.uuid4()),
                event_type="kehu.complaint.received.v1",
                ordering_key="c",
                payload={},
                status="pending",
                attempt_count=0,
                next_attempt_at=now() + timedelta(days=1),
                **values,
            )
        )
    return sub, delivery_id


async def test_a_delivery_failing_its_last_retry_is_marked_failed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sub, delivery_id = await _new_delivery(app, client)
    last = len(app.state.settings.webhook_retry_schedule_s) + 1
    failure = AttemptResult(503, 12, "HTTP 503", None, now())
    async with app.state.sessions.begin() as session:
        status = await record_attempt(
            session,
            app.state.outbox,
            app.state.settings,
            delivery_id,
            uuid.UUID(sub["id"]),
            last,
            failure,
        )
    assert status == "failed"
    got = await detail(client, sub["id"], str(delivery_id))
    assert got["status"] == "failed" and got["next_attempt_at"] is None
    assert got["attempts"][-1]["status_code"] == 503


async def test_oversized_events_are_logged_as_failed_not_sent(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    customer = uuid.uuid4()
    receiver = Receiver()
    receiver.port = 9
    sub = await subscribe(client, receiver, customer)
    event = build_event(received(customer), "/kehu/test")
    async with app.state.sessions.begin() as session:
        await enqueue(
            session, [event], settings().model_copy(update={"webhook_max_payload_bytes": 64})
        )
    [delivery] = await deliveries(client, sub["id"])
    assert delivery["status"] == "failed" and "exceeds the 64-byte limit" in delivery["last_error"]


async def test_finished_deliveries_past_retention_are_pruned(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    old = now() - timedelta(days=app.state.settings.delivery_retention_days + 1)
    sub, done_id = await _new_delivery(app, client, created_at=old)
    async with app.state.sessions.begin() as session:
        await session.execute(
            sa.update(deliveries_table)
            .where(deliveries_table.c.id == done_id)
            .values(status="succeeded")
        )
    _, pending_id = await _new_delivery(app, client, created_at=old)
    async with app.state.sessions.begin() as session:
        assert await prune_deliveries(app, session) >= 1
    gone = await client.get(f"/subscriptions/{sub['id']}/deliveries/{done_id}")
    assert gone.status_code == 404
    async with app.state.sessions.begin() as session:
        still = await session.scalar(
            sa.select(deliveries_table.c.status).where(deliveries_table.c.id == pending_id)
        )
    assert still == "pending"  # never prune what is still to be delivered
