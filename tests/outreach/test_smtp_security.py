"""E-mail to a production-like SMTP server: STARTTLS on the submission port with a login, and
implicit TLS (smtps), against real aiosmtpd servers with a certificate from a private CA; a
wrong password or an untrusted certificate is a failure the dispatcher can tell apart."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.outreach import channels
from services.outreach.config import Settings
from shared.devstack import free_port

USER, PASSWORD = "kehu-mailer", "s3cret-submission-password"


@dataclass
class Inbox:
    mails: list[tuple[str, list[str], str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        text = content.decode() if isinstance(content, bytes) else str(content)
        self.mails.append((str(envelope.mail_from), list(envelope.rcpt_tos), text))
        return "250 OK"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test's private CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kehu test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Server:
    inbox: Inbox
    port: int
    ca: Path


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[dict[str, Server]]:
    """A submission server (STARTTLS required, login required) and an smtps one."""
    cert, key = certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    submission, implicit = Inbox(), Inbox()
    ports = free_port(), free_port()
    started = [
        await loop.create_server(
            lambda: SMTP(
                submission,
                tls_context=context,
                require_starttls=True,
                auth_required=True,
                authenticator=authenticate,
            ),
            "127.0.0.1",
            ports[0],
        ),
        await loop.create_server(
            lambda: SMTP(
                implicit, authenticator=authenticate, auth_required=True, auth_require_tls=False
            ),
            "127.0.0.1",
            ports[1],
            ssl=context,
        ),
    ]
    try:
        yield {
            "submission": Server(submission, ports[0], cert),
            "implicit": Server(implicit, ports[1], cert),
        }
    finally:
        for server in started:
            server.close()
            await server.wait_closed()


def outgoing() -> channels.Outgoing:
    return channels.Outgoing(
        message_id="3d0c5b8e-1f2a-4b6c-9d8e-7f6a5b4c3d2e",
        to="wang.fang@example.com",
        subject="Your case C-1 is resolved",
        body="Dear Wang Fang,\n\nYour case C-1 is resolved.\n",
        short="Case C-1 resolved.",
    )


async def test_starttls_with_a_login_on_the_submission_port(servers: dict[str, Server]) -> None:
    server = servers["submission"]
    settings = Settings(
        OUTREACH_SMTP_URL=f"smtp://{USER}:{PASSWORD}@127.0.0.1:{server.port}?starttls=true",  # type: ignore[call-arg]
        OUTREACH_SMTP_CA_FILE=str(server.ca),
    )
    assert settings.smtp.start_tls and not settings.smtp.use_tls
    reference = await channels.send_email(settings.smtp, settings.mail_from, outgoing(), 10)
    [(sender, recipients, text)] = server.inbox.mails
    assert recipients == ["wang.fang@example.com"] and sender == "noreply@kehu.invalid"
    assert "X-Kehu-Message-Id: 3d0c5b8e-1f2a-4b6c-9d8e-7f6a5b4c3d2e" in text
    assert reference.startswith("<") and reference in text


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # TLS from the start
async def test_implicit_tls_with_smtps(servers: dict[str, Server]) -> None:
    server = servers["implicit"]
    settings = Settings(
        OUTREACH_SMTP_URL=f"smtps://{USER}:{PASSWORD}@127.0.0.1:{server.port}",  # type: ignore[call-arg]
        OUTREACH_SMTP_CA_FILE=str(server.ca),
    )
    await channels.send_email(settings.smtp, settings.mail_from, outgoing(), 10)
    assert len(server.inbox.mails) == 1


async def test_a_wrong_password_fails_for_good_and_an_untrusted_certificate_is_retried(
    servers: dict[str, Server],
) -> None:
    server = servers["submission"]
    wrong = Settings(
        OUTREACH_SMTP_URL=f"smtp://{USER}:nope@127.0.0.1:{server.port}?starttls=true",  # type: ignore[call-arg]
        OUTREACH_SMTP_CA_FILE=str(server.ca),
    )
    with pytest.raises(channels.Permanent, match="SMTP 535"):
        await channels.send_email(wrong.smtp, wrong.mail_from, outgoing(), 10)
    untrusted = Settings(
        OUTREACH_SMTP_URL=f"smtp://{USER}:{PASSWORD}@127.0.0.1:{server.port}?starttls=true",  # type: ignore[call-arg]
    )
    with pytest.raises(channels.Transient):
        await channels.send_email(untrusted.smtp, untrusted.mail_from, outgoing(), 10)
    plain = Settings(OUTREACH_SMTP_URL=f"smtp://127.0.0.1:{server.port}")  # type: ignore[call-arg]
    with pytest.raises(channels.Permanent):  # the server insists on STARTTLS (530)
        await channels.send_email(plain.smtp, plain.mail_from, outgoing(), 10)
    assert server.inbox.mails == []
