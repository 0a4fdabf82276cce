"""The outreach service's personal data, declared once.

A message's recipient (an e-mail address, a phone number or a WeChat id), its subject and body
are personal data: sealed at rest (`EncryptedText`), masked for callers without `pii:read`, and
read, exported and erased under the audit log (`GET /audit`) through the request context.
"""

from typing import Any

from services.outreach.models import audit_log
from shared import crypto
from shared.privacy import REDACT, Privacy


def ADDRESS(value: Any, _: Any) -> Any:
    """An e-mail masked as an e-mail, anything else (phone, WeChat id) as a phone number."""
    if value is None:
        return None
    if "@" in str(value):
        return crypto.mask_email(value)
    return crypto.mask_phone(value)


PRIVACY = Privacy(
    audit_log,
    {
        "message": {"recipient": ADDRESS, "subject": REDACT, "body": REDACT},
        "dev_mail": {"recipients": ADDRESS, "subject": REDACT, "raw": REDACT},
    },
)
