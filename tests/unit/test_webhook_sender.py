"""One webhook attempt against a local receiver: pinned address, host name, signatures."""

from __future__ import annotations

import base64
import json
import time

from standardwebhooks.webhooks import Webhook

from services.subscriptions.config import Settings
from services.subscriptions.delivery import Sender
from services.subscriptions.signing import SECRET_PREFIX, new_secret, signature_header
from tests.subscriptions.receiver import Receiver, running


def settings() -> Settings:
    return Settings(webhook_allowed_networks=["127.0.0.0/8", "::1/128"], webhook_timeout_s=5)


async def test_attempts_connect_to_the_checked_address_keeping_the_host_name() -> None:
    secret = new_secret()
    sender = Sender(settings())
    try:
        async with running(Receiver(secrets=[secret])) as receiver:
            url = f"http://localhost:{receiver.port}/hook"
            result = await sender.send(url, "msg_1", {"hello": "world"}, [secret])
    finally:
        await sender.aclose()
    assert result.ok, result.error
    [request] = receiver.received
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert request.verified_by == [secret] and request.event == {"hello": "world"}


async def test_a_target_refused_at_send_time_is_a_failed_attempt_not_an_error() -> None:
    sender = Sender(Settings())  # no allow-list: loopback is refused
    try:
        result = await sender.send("http://127.0.0.1:9/hook", "msg_2", {}, [new_secret()])
    finally:
        await sender.aclose()
    assert not result.ok and result.status_code is None
    assert result.error is not None and result.error.startswith("refused:")


def test_signatures_verify_with_the_standard_webhooks_library_for_every_active_secret() -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith(SECRET_PREFIX) and len(base64.b64decode(old[6:])) == 32
    body = json.dumps({"hello": "world"}).encode()
    now = int(time.time())
    header = signature_header([new, old], "msg_3", now, body)
    assert len(header.split(" ")) == 2  # one signature per secret during a rotation
    headers = {
        "webhook-id": "msg_3",
        "webhook-timestamp": str(now),
        "webhook-signature": header,
    }
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"hello": "world"}
