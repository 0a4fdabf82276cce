"""Subscriptions' personal data: the delivery log mentions customers (the payloads of events about
them). Its readers hold `subscriptions:*` scopes, not `pii:read`; what a delivery carries is what
its subscriber receives anyway. Changes are audited (`audit_log`, `GET /audit`) through the
request context; the GDPR export and erasure are in `services.subscriptions.gdpr`."""

from __future__ import annotations

from services.subscriptions.models import audit_log
from shared.privacy import REDACT, Privacy

PRIVACY = Privacy(audit_log, {"delivery": {"payload": REDACT}})
