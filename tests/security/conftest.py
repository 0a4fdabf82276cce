"""One stack of every service for the security tests, and one seeded customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from shared.migrate import SERVICES
from tests.security.stack import Seeded, headers, make_app, running, seed, settle


@dataclass
class Stack:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]


@pytest.fixture(scope="package")
async def stack() -> AsyncIterator[Stack]:
    """Every service in-process with its consumers, talking through the real broker."""
    apps = {name: make_app(name) for name in SERVICES}
    async with running(apps) as clients:
        yield Stack(apps, clients)


@pytest.fixture(scope="package")
async def seeded(stack: Stack) -> Seeded:
    """A customer with PII in profiles, interactions and complaints, consumed everywhere."""
    admin = headers("admin")
    data = await seed(stack.clients, admin)
    await settle(stack.apps, stack.clients, data.customer["id"], admin)
    return data


@pytest.fixture(scope="package")
async def seeded_person(stack: Stack) -> Seeded:
    """A private person (whose name is personal data too) with the same records."""
    admin = headers("admin")
    data = await seed(stack.clients, admin, kind="person")
    await settle(stack.apps, stack.clients, data.customer["id"], admin)
    return data
