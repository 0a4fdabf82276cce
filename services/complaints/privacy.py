"""Personal data handling: masking, the audit trail, sealed idempotency replays.

Audit entries (table `audit_log`, served at `GET /audit`):

- every change made through the API (`create` / `update`, the fields sent) and by the consumer
  (`erase`, `merge`), in the same transaction as the change;
- reads of unmasked personal data (`read_pii`): one entry per customer per request, whose
  `resource_id` lists the ids of that customer's records that carried personal text (comma
  separated) and whose `fields` name the personal fields returned. Callers without `pii:read`
  only ever see masked values, so their reads are not personal-data reads and are not logged.
- exports (`export`).

Responses written back to the caller who made a change are covered by that change's entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidTag
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints.models import audit_log
from shared import audit, crypto
from shared.auth import Principal
from shared.crypto import KeyringError, keyring
from shared.problems import Conflict

REDACTED = "[redacted]"
PII_FIELDS: dict[str, tuple[str, ...]] = {
    "complaint": (
        "complainant_name",
        "complainant_email",
        "complainant_phone",
        "subject",
        "description",
        "root_cause",
        "resolution",
        "rating_comment",
    ),
    "complaint_transition": ("note",),
    "complaint_note": ("body",),
    "complaint_action": ("description",),
}
SYSTEM = Principal(subject="system:complaints-consumer", role="system", scopes=frozenset())
IDEMPOTENCY_CONTEXT = "idempotency_keys.body"


def mask(principal: Principal, value: str | None) -> str | None:
    """Complainant details and free text are personal data: shown only with `pii:read`."""
    if value is None or principal.has("pii:read"):
        return value
    return REDACTED


async def reads(
    session: AsyncSession,
    request: Request,
    principal: Principal,
    records: Iterable[tuple[str, Any, Any]],
) -> None:
    """Log the unmasked personal data a response carries: one entry per customer.

    `records` are (resource, ORM record, customer id) triples; records without personal text
    are skipped.
    """
    await audit.record_reads(session, audit_log, request, principal, records, PII_FIELDS)


async def changed(
    session: AsyncSession,
    request: Request | None,
    principal: Principal,
    action: str,
    resource: str,
    resource_id: Any,
    customer_id: Any,
    fields: Iterable[str] = (),
) -> None:
    """Log a change (in the caller's transaction, so it exists iff the change does)."""
    await audit.record(
        session,
        audit_log,
        request,
        principal,
        action,
        resource,
        resource_id=resource_id,
        customer_id=customer_id,
        fields=sorted(fields),
    )


def mask_email(principal: Principal, value: str | None) -> str | None:
    return value if principal.has("pii:read") else crypto.mask_email(value)


def mask_phone(principal: Principal, value: str | None) -> str | None:
    return value if principal.has("pii:read") else crypto.mask_phone(value)


def seal_body(body: dict[str, Any]) -> dict[str, Any]:
    """A response stored for Idempotency-Key replays: encrypted, with only the customer id clear
    (so erasure can find and drop it)."""
    return {
        "customer_id": body.get("customer_id"),
        "sealed": keyring().seal(json.dumps(body), IDEMPOTENCY_CONTEXT),
    }


def unseal_replay(replayed: JSONResponse) -> JSONResponse:
    """The first reply, decrypted. Replies are not re-encrypted on key rotation: one sealed
    with a key since retired from the keyring is refused (409) rather than answered wrongly."""
    stored = json.loads(bytes(replayed.body))
    if not isinstance(stored, dict) or "sealed" not in stored:
        return replayed
    try:
        body = json.loads(keyring().open(stored["sealed"], IDEMPOTENCY_CONTEXT))
    except (KeyringError, InvalidTag, ValueError) as exc:
        raise Conflict(
            "The stored reply of this Idempotency-Key was encrypted with a retired key and "
            "cannot be replayed; look the record up instead of retrying"
        ) from exc
    skip = {"content-length", "content-type"}
    headers = {k: v for k, v in replayed.headers.items() if k.lower() not in skip}
    return JSONResponse(body, status_code=replayed.status_code, headers=headers)
