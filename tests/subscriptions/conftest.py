"""Subscriptions fixtures: one served app per test module, and a producer to the domain topics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.subscriptions.config import Settings
from services.subscriptions.main import create_app
from shared.auth import issue_token
from shared.contracts import DOMAIN_TOPICS
from shared.kafka import ensure_topics, new_producer
from shared.settings import ServiceSettings
from tests.conftest import auth
from tests.helpers import serve

RETRY_S = 0.3


def settings() -> Settings:
    return Settings(
        webhook_allowed_networks=["127.0.0.0/8"],
        webhook_retry_schedule_s=[RETRY_S] * 20,
        webhook_retry_jitter=0.1,
        # Long enough that a receiver failing twice then recovering stays enabled even on a
        # loaded machine, short enough that the always-failing one is disabled in seconds.
        webhook_disable_after_s=2.5,
        webhook_timeout_s=5,
        delivery_poll_interval_s=0.1,
        outbox_poll_interval_s=0.2,
        rate_limit_per_s=1000,  # the tests poll; the limiter is not what they test
    )


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(settings())


@pytest.fixture(scope="module")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_topics(ServiceSettings(), DOMAIN_TOPICS)
    async for c in serve(app):
        c.headers.update(auth(issue_token(ServiceSettings(), "integration")))
        yield c


@pytest.fixture(scope="module")
async def producer() -> AsyncIterator[AIOKafkaProducer]:
    p = new_producer(ServiceSettings())
    await p.start()
    yield p
    await p.stop()
