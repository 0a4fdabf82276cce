"""The outreach tests' world: profiles, interactions, complaints and outreach as real HTTP
servers on the real PostgreSQL and broker, outreach's dev SMTP sink as a real SMTP server, and a
test double of the SMS / WeChat provider as a real local HTTP server. Outreach runs on a
`ManualClock` (noon in Shanghai unless a test moves it)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.complaints.config import Settings as ComplaintsSettings
from services.complaints.main import create_app as complaints_app
from services.interactions.config import Settings as InteractionsSettings
from services.interactions.main import create_app as interactions_app
from services.outreach import consumers
from services.outreach.channels import signature, signed_headers, verify_signature
from services.outreach.config import ProviderSettings
from services.outreach.config import Settings as OutreachSettings
from services.outreach.main import create_app as outreach_app
from services.outreach.models import outbox
from services.profiles.config import Settings as ProfilesSettings
from services.profiles.main import create_app as profiles_app
from shared.auth import issue_token
from shared.context import ManualClock
from shared.devstack import free_port
from shared.events.envelope import to_kafka
from shared.events.registry import EventContract
from shared.outbox import build_event
from shared.settings import ServiceSettings
from tests.conftest import scratch_database
from tests.helpers import eventually, start_group_at_end
from tests.profiles.test_data_protection import running

SHANGHAI = ZoneInfo("Asia/Shanghai")
SMS_SECRET = "sms-request-secret-" + "x" * 20
SMS_CALLBACK_SECRET = "sms-callback-secret-" + "y" * 20


def headers(role: str = "admin", subject: str = "outreach-tests") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(ServiceSettings(), role, subject=subject)}"}


ADMIN = headers()


def shanghai(hour: int, minute: int = 0, days: int = 0) -> datetime:
    """Today (UTC date) plus `days`, at hour:minute in Shanghai, as UTC."""
    day = datetime.now(UTC).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class ProviderDouble:
    """An SMS / WeChat provider: records signed requests, answers with queued statuses."""

    answers: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    coupons: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/coupons")  # the loyalty service's coupon, for the win-back playbook
        async def coupon(request: Request) -> JSONResponse:
            body = await request.json()
            self.coupons.append({**body, "idempotency_key": request.headers.get("idempotency-key")})
            return JSONResponse({"code": f"WB-{uuid.uuid4().hex[:6].upper()}"}, status_code=201)

        @app.post("/{channel}")
        async def send(channel: str, request: Request) -> JSONResponse:
            body = await request.body()
            signed = verify_signature(
                SMS_SECRET,
                request.headers.get("x-kehu-timestamp"),
                request.headers.get("x-kehu-signature"),
                body,
                float(request.headers.get("x-kehu-timestamp") or 0),
            )
            status = self.answers.pop(0) if self.answers else 200
            if not signed:
                status = 401
            reference = f"prov-{uuid.uuid4().hex[:12]}"
            self.received.append(
                {"channel": channel, "signed": signed, "reference": reference, **json.loads(body)}
            )
            return JSONResponse({"id": reference} if status < 300 else {}, status_code=status)

        return app


@dataclass
class World:
    urls: dict[str, str]
    outreach: FastAPI
    settings: OutreachSettings
    clock: ManualClock
    client: httpx.AsyncClient
    provider: ProviderDouble

    # -- actions through the real APIs ----------------------------------------------------------

    async def customer(self, **fields: Any) -> dict[str, Any]:
        u = uuid.uuid4().hex[:8]
        body = {
            "kind": "person",
            "display_name": f"Li Wei {u}",
            "email": f"li.wei.{u}@example.com",
            "language": "en",
            **fields,
        }
        response = await self.client.post(
            self.urls["profiles"] + "/customers",
            json=body,
            # Phones are fixed in some tests: other suites may have used them in profiles.
            params={"allow_duplicate": "true"},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        await self.known(created["id"])
        return created

    async def known(self, customer_id: str) -> None:
        """Wait until outreach has the customer's dimensions (customer.created consumed)."""

        async def seen() -> bool:
            async with self.outreach.state.engine.connect() as conn:
                found = await conn.execute(
                    sa.text(
                        "SELECT 1 FROM customers"
                        " WHERE customer_id = :c AND dimensions_at IS NOT NULL"
                    ),
                    {"c": customer_id},
                )
                return found.first() is not None

        await eventually(seen, timeout=90)

    async def consent(self, customer_id: str, purpose: str, granted: bool) -> None:
        response = await self.client.post(
            f"{self.urls['profiles']}/customers/{customer_id}/consents",
            json={"purpose": purpose, "granted": granted, "source": "web_form"},
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text

        async def projected() -> bool:
            async with self.outreach.state.engine.connect() as conn:
                row = (
                    await conn.execute(
                        sa.text(
                            "SELECT granted FROM consents WHERE customer_id = :c AND purpose = :p"
                        ),
                        {"c": customer_id, "p": purpose},
                    )
                ).first()
                return row is not None and row.granted is granted

        await eventually(projected, timeout=60)

    async def messages(self, customer_id: str, **params: Any) -> list[dict[str, Any]]:
        response = await self.client.get(
            self.urls["outreach"] + "/messages",
            params={"customer_id": customer_id, **params},
            headers=ADMIN,
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def message_in(self, customer_id: str, status: str, template: str) -> dict[str, Any]:
        """Wait for the customer's message from `template` to reach `status`."""
        found: dict[str, Any] = {}

        async def reached() -> bool:
            for message in await self.messages(customer_id):
                if message["template_key"] == template and message["status"] == status:
                    found.update(message)
                    return True
            return False

        try:
            await eventually(reached, timeout=90, interval=0.2)
        except AssertionError:
            raise AssertionError(
                f"no {template} message {status}: {await self.messages(customer_id)}"
            ) from None
        return found

    async def message(self, message_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"{self.urls['outreach']}/messages/{message_id}", headers=ADMIN
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def mail_of(self, message_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            self.urls["outreach"] + "/dev/mail", params={"message_id": message_id}
        )
        assert response.status_code == 200, response.text
        mails: list[dict[str, Any]] = response.json()
        return mails

    async def publish(self, topic_event: EventContract, *, event_id: str | None = None) -> str:
        """Put an event on its topic as its service's relay would (CloudEvents binary mode)."""
        event = build_event(topic_event, "/kehu/tests")
        if event_id is not None:
            event = event.model_copy(update={"id": event_id})
        key, value, kafka_headers = to_kafka(event)
        producer = AIOKafkaProducer(bootstrap_servers=ServiceSettings().kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(topic_event.topic, value, key=key, headers=kafka_headers)
        finally:
            await producer.stop()
        return event.id

    async def published(self, message_id: str) -> list[str]:
        """The types of the events outreach published about a message, in order."""
        async with self.outreach.state.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox.c.type)
                    .where(outbox.c.data["message_id"].astext == message_id)
                    .order_by(outbox.c.id)
                )
            ).all()
        return [row.type for row in rows]

    async def callback(self, channel: str, body: dict[str, Any], secret: str) -> httpx.Response:
        raw = json.dumps(body).encode()
        provider = ProviderSettings(secret=secret)
        return await self.client.post(
            f"{self.urls['outreach']}/callbacks/{channel}",
            content=raw,
            headers=signed_headers(provider, raw),
        )


def link_in(text: str, path: str) -> str:
    match = re.search(rf"https?://[^\s]+{path}[A-Za-z0-9_\-\.]+", text)
    assert match, f"no {path} link in {text!r}"
    return match.group(0)


@pytest.fixture(scope="package")
async def world() -> AsyncIterator[World]:
    fast: dict[str, Any] = {"outbox_poll_interval_s": 0.2, "rate_limit_per_s": 0}
    provider = ProviderDouble()
    sink = free_port()
    clock = ManualClock(shanghai(12))
    settings = OutreachSettings(
        **fast,
        consumer_group=f"outreach-tests-{uuid.uuid4().hex[:8]}",
        dev_smtp_sink_port=sink,
        smtp_url=f"smtp://127.0.0.1:{sink}",
        sms_secret=SMS_SECRET,
        sms_callback_secret=SMS_CALLBACK_SECRET,
        dispatch_interval_s=0.2,
        greetings_interval_s=3600,
        retry_base_s=60,
    )
    outreach = outreach_app(settings)
    outreach.state.clock = clock
    profiles_settings = ProfilesSettings(**fast)
    async with AsyncExitStack() as stack:
        # Its own database: other suites (the fuzzer, the audit walk) write templates and
        # messages into the default one.
        settings.service_database_url = await stack.enter_async_context(
            scratch_database("outreach")
        )
        urls = {
            "profiles": await stack.enter_async_context(
                running(profiles_app(profiles_settings), lifespan="on")
            ),
            "interactions": await stack.enter_async_context(
                running(interactions_app(InteractionsSettings(**fast)), lifespan="on")
            ),
            "complaints": await stack.enter_async_context(
                running(
                    complaints_app(
                        ComplaintsSettings(
                            **fast, consumers_enabled=False, sla_scheduler_enabled=False
                        )
                    ),
                    lifespan="on",
                )
            ),
            "provider": await stack.enter_async_context(running(provider.app())),
        }
        provider.url = urls["provider"]
        settings.profiles_url = urls["profiles"]
        settings.interactions_url = urls["interactions"]
        settings.sms_url = urls["provider"] + "/sms"
        settings.wechat_url = urls["provider"] + "/wechat"
        settings.wechat_secret = SMS_SECRET
        settings.loyalty_url = urls["provider"]
        # The world's own events only: replaying the whole run's history through outreach's
        # handlers took longer than a test waits for its customer, late in a full run.
        await start_group_at_end(
            settings.kafka_bootstrap_servers, settings.consumer_group, consumers.topics(settings)
        )
        urls["outreach"] = await stack.enter_async_context(running(outreach, lifespan="on"))
        settings.public_base_url = urls["outreach"]
        profiles_settings.outreach_url = urls["outreach"]  # its GDPR peer
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        yield World(urls, outreach, settings, clock, client, provider)


@pytest.fixture
async def noon(world: World) -> AsyncIterator[World]:
    """The world at noon in Shanghai (outside quiet hours), put back after the test."""
    world.clock.set(shanghai(12))
    yield world
    world.clock.set(shanghai(12))


__all__ = ["ADMIN", "SMS_CALLBACK_SECRET", "World", "headers", "link_in", "shanghai", "signature"]
