"""The console and the APIs it reads, each a real uvicorn server on a free port inside the test's
event loop (the browser needs real HTTP), with `make demo`'s data set loaded through the APIs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from bench.datagen import Customer, customers
from bench.demo import Sender, Tally, load
from services.console.config import Settings as ConsoleSettings
from services.console.main import create_app as console_app
from shared.auth import issue_token
from shared.devstack import free_port
from shared.serve import KEEP_ALIVE_S
from shared.settings import ServiceSettings
from tests.helpers import eventually
from tests.security.stack import make_app

APIS = ("profiles", "interactions", "complaints", "analytics", "loyalty")
# Chromium as Debian ships it; Playwright drives it over its pipe, no browser download.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.asynccontextmanager
async def http_server(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` (lifespan included) on 127.0.0.1:<free port>; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # The browser's keep-alive connections must not keep the app from its lifespan
        # shutdown: its consumers would stay in their groups for the rest of the run.
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _started(server, task), timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 60)


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # raise what stopped it
    return bool(server.started)


def admin_headers(subject: str = "console-tests") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(ServiceSettings(), 'admin', subject=subject)}"}


@dataclass
class Stack:
    urls: dict[str, str]
    console: str
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def console_stack(**console_overrides: Any) -> AsyncIterator[Stack]:
    """Every API the console reads plus the console itself."""
    async with contextlib.AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(http_server(make_app(name))) for name in APIS}
        settings = ConsoleSettings(
            CONSOLE_PROFILES_URL=urls["profiles"],
            CONSOLE_INTERACTIONS_URL=urls["interactions"],
            CONSOLE_COMPLAINTS_URL=urls["complaints"],
            CONSOLE_ANALYTICS_URL=urls["analytics"],
            CONSOLE_LOYALTY_URL=urls["loyalty"],
            **console_overrides,
        )
        console = await stack.enter_async_context(http_server(console_app(settings)))
        clients = {}
        for name, url in urls.items():
            client = httpx.AsyncClient(base_url=url, headers=admin_headers(), timeout=60)
            stack.push_async_callback(client.aclose)
            clients[name] = client
        yield Stack(urls, console, clients)


async def load_demo(stack: Stack, count: int, seed: int) -> list[Customer]:
    """`make demo`'s loader through the APIs, then wait until analytics holds every record and
    re-rank, so tiers, churn risk, satisfaction and complaint figures all have the data."""
    now = datetime.now(UTC).replace(microsecond=0)
    plan = list(customers(count, seed, now))
    tally = await load(stack.clients, count, seed, Sender(Tally()), now)
    assert not tally.failed, tally.lines()
    ids = await _ids_by_ref(stack, plan)

    async def analytics_has_everything() -> bool:
        for customer in plan:
            response = await stack.clients["analytics"].get(
                f"/customers/{ids[customer.external_ref]}/insights"
            )
            if response.status_code != 200:
                return False
            facts = response.json()
            if (
                facts["purchases"]["total"] != len(customer.purchases)
                or facts["satisfaction"]["surveys"] != len(customer.surveys)
                or facts["complaints"]["total"] != len(customer.complaints)
            ):
                return False
        return True

    await eventually(analytics_has_everything, timeout=180, interval=0.5)
    response = await stack.clients["analytics"].post("/admin/recompute")
    assert response.status_code == 200, response.text
    return plan


async def _ids_by_ref(stack: Stack, plan: list[Customer]) -> dict[str, str]:
    ids = {}
    for customer in plan:
        response = await stack.clients["profiles"].get(
            "/customers", params={"external_ref": customer.external_ref}
        )
        assert response.status_code == 200, response.text
        [found] = response.json()["items"]
        ids[customer.external_ref] = found["id"]
    return ids
