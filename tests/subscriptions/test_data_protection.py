"""Subscriptions' data protection: sealed secrets and replies, key rotation, GDPR export and
erasure of the delivery log, against the real stack."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.subscriptions.models import metadata
from shared import crypto
from shared.auth import issue_token
from shared.contracts.customers import CustomerErased
from shared.settings import ServiceSettings
from tests.conftest import auth
from tests.helpers import eventually, rotate_back
from tests.subscriptions.receiver import Receiver, running
from tests.subscriptions.test_webhooks import (
    _delivered,
    deliveries,
    now,
    publish,
    received,
    resolved,
    subscribe,
)


def admin() -> dict[str, str]:
    """The GDPR routes need `customers:read` and `pii:read` (profiles asks as a service)."""
    return auth(issue_token(ServiceSettings(), "admin"))


async def raw(app: FastAPI, sql: str, **params: Any) -> list[Any]:
    async with app.state.engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


async def test_signing_secrets_and_idempotent_replies_are_sealed_at_rest(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    receiver = Receiver()
    receiver.port = 9  # never called
    key = f"k-{uuid.uuid4()}"
    body = {"url": receiver.url, "event_types": ["kehu.complaint.*"]}
    first = await client.post("/subscriptions", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    created = first.json()
    rotated = await client.post(
        f"/subscriptions/{created['id']}/secret/rotate", json={"grace_period_s": 3600}
    )
    assert rotated.status_code == 200

    [row] = await raw(
        app,
        "SELECT secret, previous_secret FROM subscriptions WHERE id = :id",
        id=created["id"],
    )
    assert row.secret.startswith("k1.") and "whsec_" not in row.secret
    assert row.previous_secret.startswith("k1.") and "whsec_" not in row.previous_secret
    [reply] = await raw(
        app, "SELECT body::text AS body FROM idempotency_keys WHERE key = :key", key=key
    )
    assert created["secret"] not in reply.body and "whsec_" not in reply.body

    again = await client.post("/subscriptions", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == created
    assert again.headers["location"] == f"/subscriptions/{created['id']}"


async def test_reencrypt_rotates_the_secrets_and_deliveries_still_verify(
    client: httpx.AsyncClient, app: FastAPI, producer: AIOKafkaProducer
) -> None:
    customer = uuid.uuid4()
    async with running(Receiver()) as receiver:
        sub = await subscribe(client, receiver, customer)
        old = crypto.keyring()
        new_kid = f"rot{secrets.token_hex(3)}"
        ring = crypto.Keyring(
            keys={new_kid: secrets.token_bytes(32), **old.keys},
            active=new_kid,
            index_key=old.index_key,
        )
        crypto.configure(ring)
        try:
            assert await crypto.reencrypt(app.state.engine, metadata) > 0
            [row] = await raw(app, "SELECT secret FROM subscriptions WHERE id = :id", id=sub["id"])
            assert row.secret.startswith(f"k1.{new_kid}.")
            # The old key retired: the worker opens the secret with the new key alone.
            crypto.configure(
                crypto.Keyring(
                    keys={new_kid: ring.keys[new_kid]}, active=new_kid, index_key=old.index_key
                )
            )
            await publish(producer, received(customer))
            await eventually(lambda: _delivered(client, sub["id"], 1), timeout=60)
            assert receiver.received[0].verified_by == [sub["secret"]]
            got = await client.get(f"/subscriptions/{sub['id']}/secret")
            assert got.json()["secret"] == sub["secret"]
        finally:
            await rotate_back(app.state.engine, metadata, ring, old)


async def test_gdpr_export_and_erasure_of_the_delivery_log(
    client: httpx.AsyncClient, app: FastAPI, producer: AIOKafkaProducer
) -> None:
    customer, stranger = uuid.uuid4(), uuid.uuid4()
    async with running(Receiver()) as receiver:
        sub = await subscribe(
            client, receiver, customer, event_types=["kehu.complaint.*", "kehu.customer.*"]
        )
        await publish(producer, received(customer), resolved(customer))
        await eventually(lambda: _delivered(client, sub["id"], 2), timeout=60)

        nothing = await client.get(f"/customers/{stranger}/export", headers=admin())
        assert nothing.status_code == 200
        assert nothing.json()["status"] == "holds_nothing"
        unknown = (await client.get(f"/customers/{stranger}/erasure", headers=admin())).json()
        assert unknown["status"] == "holds_nothing" and unknown["erased"] is True

        export = await client.get(f"/customers/{customer}/export", headers=admin())
        assert export.status_code == 200, export.text
        document = export.json()
        assert document["status"] == "ok" and document["service"] == "subscriptions"
        # Other tests' subscriptions without a customer filter got these events too.
        sent = [d for d in document["data"]["deliveries"] if d["subscription_id"] == sub["id"]]
        assert len(sent) == 2
        assert {d["payload"]["data"]["customer_id"] for d in sent} == {str(customer)}
        assert [s["id"] for s in document["data"]["subscriptions_filtering_on_customer"]] == [
            sub["id"]
        ]
        pending = (await client.get(f"/customers/{customer}/erasure", headers=admin())).json()
        assert pending["status"] == "pending" and pending["erased"] is False

        await publish(producer, CustomerErased(customer_id=customer, occurred_at=now()))

        async def erased() -> bool:
            report = (await client.get(f"/customers/{customer}/erasure", headers=admin())).json()
            return report["status"] == "erased"

        await eventually(erased, timeout=60)
        # The erasure notice itself still reaches the subscriber.
        await eventually(lambda: _delivered(client, sub["id"], 3), timeout=60)

    report = (await client.get(f"/customers/{customer}/erasure", headers=admin())).json()
    assert report["erased"] is True and report["kept"]
    logged = await deliveries(client, sub["id"])
    complaints = [d for d in logged if d["event_type"].startswith("kehu.complaint.")]
    assert len(complaints) == 2
    assert all(d["status"] == "succeeded" and d["attempt_count"] == 1 for d in complaints)
    for d in complaints:
        detail = (await client.get(f"/subscriptions/{sub['id']}/deliveries/{d['id']}")).json()
        assert detail["payload"]["data"] == {} and detail["payload"]["redacted"] is True
        assert str(customer) not in str(detail)
        assert detail["attempts"][0]["status_code"] == 200
    after = (await client.get(f"/customers/{customer}/export", headers=admin())).json()
    assert after["erased_at"] is not None
    kinds = {d["event_type"] for d in after["data"]["deliveries"]}
    assert kinds == {CustomerErased.event_type()}
    read = (await client.get(f"/subscriptions/{sub['id']}")).json()
    assert str(customer) not in (read["customer_ids"] or [])
