"""The personal data of the interactions service, declared once.

Free text and contact names are personal data: encrypted at rest (`shared.crypto`), shown only
to callers with `pii:read` (else `[redacted]`), their unmasked reads and every change written
to the audit log (`GET /audit`) through the request context (see `shared.privacy`).
"""

from __future__ import annotations

from services.interactions.models import audit_log
from shared.privacy import REDACT, Privacy

PRIVACY = Privacy(
    audit_log,
    {
        "interaction": {"contact_person": REDACT, "subject": REDACT, "summary": REDACT},
        "followup": {"note": REDACT},
        "refund": {"reason": REDACT},
        "survey": {"comment": REDACT},
    },
)
