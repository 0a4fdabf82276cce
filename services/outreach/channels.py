"""Delivery channels: e-mail over SMTP, SMS and WeChat through HTTP providers.

Each `send` returns the provider's reference or raises `Transient` (try again later: a timeout,
a refused connection, a 5xx or an SMTP 4xx) or `Permanent` (retrying will not help: a 4xx from
the provider, an address the SMTP server refuses). Provider requests are signed:

    X-Kehu-Key-Id: <key id>
    X-Kehu-Timestamp: <unix seconds>
    X-Kehu-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

and provider callbacks are checked with the same scheme under the callback secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

import aiosmtplib
import httpx

from services.outreach.config import ProviderSettings, SmtpTarget

SIGNATURE_TOLERANCE_S = 300


class Transient(Exception):
    """The send failed in a way that may pass: retry with back-off."""


class Permanent(Exception):
    """The send failed for good (bad address, refused request)."""


@dataclass
class Outgoing:
    message_id: str
    to: str
    subject: str
    body: str
    short: str
    unsubscribe_url: str | None = None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def signed_headers(
    provider: ProviderSettings, body: bytes, now: float | None = None
) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {
        "Content-Type": "application/json",
        "X-Kehu-Key-Id": provider.key_id,
        "X-Kehu-Timestamp": timestamp,
        "X-Kehu-Signature": signature(provider.secret, timestamp, body),
    }


def verify_signature(
    secret: str, timestamp: str | None, given: str | None, body: bytes, now: float
) -> bool:
    """Whether a callback carries a fresh signature of its body under `secret`."""
    if not secret or not timestamp or not given:
        return False
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    if age > SIGNATURE_TOLERANCE_S:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)


def email_message(mail_from: str, outgoing: Outgoing) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = formataddr(("", outgoing.to))
    message["Subject"] = outgoing.subject
    message["Message-ID"] = make_msgid(domain="kehu.invalid")
    message["X-Kehu-Message-Id"] = outgoing.message_id
    if outgoing.unsubscribe_url:
        # RFC 2369 / RFC 8058: mail clients show an unsubscribe button.
        message["List-Unsubscribe"] = f"<{outgoing.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(outgoing.body)
    return message


async def send_email(target: SmtpTarget, mail_from: str, outgoing: Outgoing, timeout: float) -> str:
    message = email_message(mail_from, outgoing)
    try:
        await aiosmtplib.send(
            message,
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            cert_bundle=target.ca_file,
            timeout=timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        if all(500 <= c < 600 for c in codes):
            raise Permanent(f"SMTP refused the recipient ({codes})") from exc
        raise Transient(f"SMTP deferred the recipient ({codes})") from exc
    except aiosmtplib.SMTPResponseException as exc:
        if 500 <= exc.code < 600:
            raise Permanent(f"SMTP {exc.code}") from exc
        raise Transient(f"SMTP {exc.code}") from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise Transient(f"SMTP unreachable: {type(exc).__name__}") from exc
    return str(message["Message-ID"])


async def send_via_provider(
    channel: str, provider: ProviderSettings, outgoing: Outgoing, timeout: float
) -> str:
    """POST the message to the provider's API, signed; its `id` is the provider reference."""
    if not provider.url:
        raise Permanent(f"no {channel} provider configured")
    payload: dict[str, Any] = {
        "channel": channel,
        "to": outgoing.to,
        "text": outgoing.short,
        "client_ref": outgoing.message_id,
    }
    body = json.dumps(payload, ensure_ascii=False).encode()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(
                provider.url, content=body, headers=signed_headers(provider, body)
            )
    except httpx.HTTPError as exc:
        raise Transient(f"{channel} provider unreachable: {type(exc).__name__}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise Transient(f"{channel} provider answered {response.status_code}")
    if response.status_code >= 400:
        raise Permanent(f"{channel} provider refused: {response.status_code}")
    try:
        reference = response.json().get("id")
    except (ValueError, AttributeError):
        reference = None
    return str(reference or outgoing.message_id)
