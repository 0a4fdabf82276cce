"""The dev SMTP sink: a real SMTP server (aiosmtpd) that `make dev` runs inside the outreach
service, keeping every mail it receives in the outreach database (sealed, like all personal
data) for `GET /dev/mail` and `/dev/mail/ui`. It never runs in production."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI

from services.outreach import repository as repo
from shared.context import clock_of

logger = logging.getLogger("kehu.outreach.devmail")


class SinkHandler:
    """Stores each mail; links it to the message (and so the customer) it carries."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        parsed = message_from_bytes(raw, policy=policy.default)
        message_id: uuid.UUID | None = None
        with contextlib.suppress(ValueError, TypeError):
            message_id = uuid.UUID(str(parsed.get("X-Kehu-Message-Id", "")).strip())
        async with self.app.state.sessions.begin() as db:
            await repo.store_dev_mail(
                db,
                received_at=clock_of(self.app).now(),
                message_id=message_id,
                mail_from=envelope.mail_from,
                recipients=", ".join(envelope.rcpt_tos),
                subject=str(parsed.get("Subject", "")),
                raw=raw.decode("utf-8", errors="replace"),
            )
        return "250 Message accepted for delivery"


async def start_sink(app: FastAPI, port: int) -> asyncio.Server:
    handler = SinkHandler(app)
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(handler, hostname="kehu-dev-sink", enable_SMTPUTF8=True)

    server = await loop.create_server(protocol, "127.0.0.1", port)
    logger.info("dev SMTP sink listening on 127.0.0.1:%s", port)
    return server


def sink_task(port: int) -> Any:
    """A background task of the app: the sink runs as long as the service does."""

    async def run(app: FastAPI) -> None:
        try:
            server = await start_sink(app, port)
        except OSError as exc:  # another replica of the service already runs the sink
            logger.warning("dev SMTP sink not started on port %s: %s", port, exc)
            return
        try:
            await asyncio.Event().wait()
        finally:
            server.close()
            await server.wait_closed()

    return run
