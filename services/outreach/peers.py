"""Calls to the other services, each with a short-lived service token (subject `outreach`) and
a timeout. Contact details are read from profiles when a message goes out, never kept longer
than the message needs them (sealed on the message)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_correlation_id import correlation_id

from services.outreach.config import Settings
from shared.auth import issue_token

SUBJECT = "outreach"


class PeerUnavailable(Exception):
    """The peer could not answer now (unreachable, timed out, 5xx): try again later."""


class PeerRefused(Exception):
    """The peer answered with a 4xx: `status` and `body` say why."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


@dataclass
class Contact:
    """What a message needs of the customer from profiles."""

    customer_id: uuid.UUID
    name: str | None
    email: str | None
    phone: str | None
    wechat_openid: str | None
    language: str | None
    preferred_channel: str | None
    timezone: str | None
    owner_id: str | None
    erased: bool


def _headers(settings: Settings, role: str, purpose: str, *scopes: str) -> dict[str, str]:
    claims = {"scope": " ".join(scopes)} if scopes else {}
    token = issue_token(settings, role, subject=SUBJECT, ttl_s=300, **claims)
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": purpose}
    if (request_id := correlation_id.get()) is not None:
        headers["X-Request-ID"] = request_id
    return headers


async def _call(
    settings: Settings,
    method: str,
    url: str,
    headers: dict[str, str],
    json: Any = None,
) -> Any:
    try:
        async with httpx.AsyncClient(timeout=settings.peer_timeout_s) as client:
            response = await client.request(method, url, headers=headers, json=json)
    except httpx.HTTPError as exc:
        raise PeerUnavailable(f"{url}: {type(exc).__name__}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise PeerUnavailable(f"{url}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = response.text[:500]
    if response.status_code >= 400:
        raise PeerRefused(response.status_code, body)
    return body


async def contact(settings: Settings, customer_id: uuid.UUID) -> Contact | None:
    """The customer's name, addresses and language from profiles; None when profiles does not
    know the customer. Organisations without an e-mail use their primary contact's."""
    base = settings.profiles_url.rstrip("/")
    headers = _headers(settings, "integration", "outreach: deliver a message", "pii:read")
    try:
        customer = await _call(settings, "GET", f"{base}/customers/{customer_id}", headers)
    except PeerRefused as exc:
        if exc.status == 404:
            return None
        raise
    email, phone = customer.get("email"), customer.get("phone")
    name = customer.get("display_name")
    if customer.get("kind") == "organisation" and not (email and phone):
        contacts = await _call(settings, "GET", f"{base}/customers/{customer_id}/contacts", headers)
        items = contacts.get("items", contacts) if isinstance(contacts, dict) else contacts
        primary = sorted(items or [], key=lambda c: not c.get("is_primary"))
        for person in primary:
            if not email and person.get("email"):
                email, name = person["email"], person.get("name") or name
            if not phone and person.get("phone"):
                phone = person["phone"]
    attributes = customer.get("custom_attributes") or {}
    return Contact(
        customer_id=customer_id,
        name=name,
        email=email,
        phone=phone,
        wechat_openid=attributes.get("wechat_openid"),
        language=customer.get("language"),
        preferred_channel=customer.get("preferred_channel"),
        timezone=attributes.get("timezone"),
        owner_id=customer.get("owner_id"),
        erased=customer.get("erased_at") is not None,
    )


async def withdraw_consent(
    settings: Settings, customer_id: uuid.UUID, purpose: str, key: str
) -> None:
    """Record in profiles that the customer withdrew `purpose` (from an unsubscribe link)."""
    url = f"{settings.profiles_url.rstrip('/')}/customers/{customer_id}/consents"
    headers = _headers(settings, "integration", "outreach: unsubscribe link")
    headers["Idempotency-Key"] = key
    await _call(
        settings,
        "POST",
        url,
        headers,
        json={"purpose": purpose, "granted": False, "source": "unsubscribe_link"},
    )


async def submit_survey(settings: Settings, body: dict[str, Any], key: str) -> dict[str, Any]:
    """Post a survey answer to interactions (idempotent by `key`: a retry answers once)."""
    url = f"{settings.interactions_url.rstrip('/')}/surveys"
    headers = _headers(settings, "integration", "outreach: survey page answer")
    headers["Idempotency-Key"] = key
    answer: dict[str, Any] = await _call(settings, "POST", url, headers, json=body)
    return answer


async def create_followup(settings: Settings, body: dict[str, Any], key: str) -> dict[str, Any]:
    """A follow-up task in interactions (idempotent by `key`)."""
    url = f"{settings.interactions_url.rstrip('/')}/followups"
    headers = _headers(settings, "admin", "outreach: win-back playbook")
    headers["Idempotency-Key"] = key
    answer: dict[str, Any] = await _call(settings, "POST", url, headers, json=body)
    return answer


async def issue_coupon(settings: Settings, customer_id: uuid.UUID, key: str) -> str | None:
    """A win-back coupon from the loyalty service (only with OUTREACH_WINBACK_COUPON on)."""
    url = f"{settings.loyalty_url.rstrip('/')}/coupons"
    headers = _headers(settings, "admin", "outreach: win-back coupon")
    headers["Idempotency-Key"] = key
    answer = await _call(
        settings, "POST", url, headers, json={"customer_id": str(customer_id), "reason": "winback"}
    )
    code = answer.get("code") if isinstance(answer, dict) else None
    return str(code) if code else None
