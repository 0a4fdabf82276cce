"""A webhook receiver on 127.0.0.1 that verifies every delivery with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.devstack import free_port
from shared.serve import KEEP_ALIVE_S


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    verified_by: list[str]

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Answers with `script` statuses in turn, then `default`; records each request."""

    secrets: list[str] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    default: int = 200
    received: list[Received] = field(default_factory=list)
    port: int = 0
    # When given, each request is held until it is set (the sender waits meanwhile).
    gate: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def verifying(self, body: bytes, headers: dict[str, str]) -> list[str]:
        """The secrets whose reference verification accepts this request."""
        ok = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            ok.append(secret)
        return ok

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = self.verifying(body, headers)
        if self.gate is not None:
            await self.gate.wait()
        status = self.script.pop(0) if self.script else self.default
        if not verified:
            status = 401  # what a real receiver does with a bad signature
        self.received.append(Received(headers, body, status, verified))
        return Response(f"status {status}", status_code=status)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]


@contextlib.asynccontextmanager
async def running(receiver: Receiver) -> AsyncIterator[Receiver]:
    receiver.port = free_port()
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=receiver.port,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=KEEP_ALIVE_S,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
