"""Data protection in profiles: blind indexes, masking, the agents' ownership limit, audit.

- Blind indexes: exact look-up and duplicate checks on encrypted e-mail, phone and names.
- Masking: callers without `pii:read` get the same masked view from every endpoint.
- Ownership: with `agents_own_customers_only`, role `agent` sees and changes only customers
  whose `owner_id` is its token subject (others are 404, lists are filtered).
- Audit: every response carrying unmasked PII and every change is appended to `audit_log`.
  Reads of lists are recorded as one entry per customer returned (so `GET /audit?customer_id=`
  answers "who saw this customer"), written in one statement per request.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from asgi_correlation_id import correlation_id
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.profiles.models import Customer, audit_log
from shared.auth import Principal
from shared.crypto import blind_index, keyring, mask_email, mask_phone

# -- blind indexes -----------------------------------------------------------------------------


def name_key(name: str | None) -> str | None:
    return " ".join(name.split()).lower() if name else None


def email_index(email: str | None) -> str | None:
    return blind_index(email.strip().lower(), "customers.email") if email else None


def phone_index(phone: str | None) -> str | None:
    return blind_index(phone, "customers.phone") if phone else None


def display_name_index(name: str | None) -> str | None:
    key = name_key(name)
    return blind_index(key, "customers.display_name") if key else None


def duplicate_name_index(kind: str, name: str | None, company: str | None) -> str | None:
    """Organisations: the same name; persons: the same name within the same company."""
    key = name_key(name)
    if not key:
        return None
    if kind == "organisation":
        return blind_index(f"organisation\0{key}", "customers.name")
    company_key = name_key(company)
    if not company_key:
        return None
    return blind_index(f"person\0{key}\0{company_key}", "customers.name")


def derived(values: dict[str, Any]) -> dict[str, Any]:
    """The index and search columns of a customer, computed from its (plain) field values."""
    kind = values.get("kind") or "person"
    name = values.get("display_name")
    return {
        "email_index": email_index(values.get("email")),
        "phone_index": phone_index(values.get("phone")),
        "display_name_index": display_name_index(name),
        "name_index": duplicate_name_index(kind, name, values.get("company_name")),
        "search_name": name if kind == "organisation" and name else None,
    }


def refresh_derived(customer: Customer) -> None:
    fields = ("kind", "display_name", "email", "phone", "company_name")
    for key, value in derived({f: getattr(customer, f) for f in fields}).items():
        setattr(customer, key, value)


# -- masking -----------------------------------------------------------------------------------


def mask_name(kind: str, name: str | None) -> str | None:
    """A person's name is personal data; an organisation's is not."""
    if kind == "organisation" or not name:
        return name
    return f"{name[:1]}***"


def masked_customer(values: dict[str, Any]) -> dict[str, Any]:
    """The fields a caller without `pii:read` sees, replacing the ones it may not."""
    return {
        **values,
        "display_name": mask_name(values.get("kind", "person"), values.get("display_name")),
        "email": mask_email(values.get("email")),
        "phone": mask_phone(values.get("phone")),
        "legal_name": None,
        "addresses": [],
        "notes": None,
        "custom_attributes": {},
    }


# -- ownership ---------------------------------------------------------------------------------


def owner_limit(request: Request, principal: Principal) -> str | None:
    """The owner the caller is limited to, or None when it may see every customer."""
    if principal.role == "agent" and request.app.state.settings.agents_own_customers_only:
        return principal.subject
    return None


# -- audit -------------------------------------------------------------------------------------


async def audit(
    session: AsyncSession,
    request: Request,
    principal: Principal,
    action: str,
    resource: str,
    customer_ids: Iterable[uuid.UUID | str],
    fields: Sequence[str] = (),
    resource_id: Any = None,
) -> None:
    """Append one entry per customer (one statement), in the request's transaction."""
    ids = list(dict.fromkeys(str(c) for c in customer_ids))
    if not ids:
        return
    purpose = request.headers.get("x-purpose")
    common = {
        "actor": principal.subject,
        "role": principal.role,
        "action": action,
        "resource": resource,
        "purpose": purpose[:500] if purpose else None,
        "request_id": correlation_id.get(),
        "fields": list(fields),
    }
    await session.execute(
        sa.insert(audit_log),
        [
            {
                **common,
                "customer_id": cid,
                "resource_id": str(resource_id) if resource_id is not None else cid,
            }
            for cid in ids
        ],
    )


CUSTOMER_PII_FIELDS = list(Customer.PII_COLUMNS)


# -- stored idempotent replies -----------------------------------------------------------------

IDEMPOTENCY_CONTEXT = "profiles.idempotency_keys.body"
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def seal_body(body: Any) -> dict[str, Any]:
    """A reply stored for Idempotency-Key replays, encrypted (it may quote personal data); the
    ids it mentions stay clear so erasure can find and drop it."""
    text = json.dumps(body, default=str)
    return {
        "ids": sorted(set(UUID_PATTERN.findall(text))),
        "sealed": keyring().seal(text, IDEMPOTENCY_CONTEXT),
    }


def unseal_replay(replayed: JSONResponse) -> JSONResponse:
    stored = json.loads(bytes(replayed.body))
    if not isinstance(stored, dict) or "sealed" not in stored:
        return replayed
    body = json.loads(keyring().open(stored["sealed"], IDEMPOTENCY_CONTEXT))
    skip = {"content-length", "content-type"}
    headers = {k: v for k, v in replayed.headers.items() if k.lower() not in skip}
    return JSONResponse(body, status_code=replayed.status_code, headers=headers)
