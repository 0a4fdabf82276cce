"""The complaints service's personal data, declared once.

Complainant details and every free text are personal data: encrypted at rest (the columns are
`EncryptedText`), masked for callers without `pii:read` (the name and texts `[redacted]`, the
e-mail and phone partly), and read, changed, exported and erased under the audit log
(`GET /audit`) through the request context.
"""

from services.complaints.models import audit_log
from shared.privacy import EMAIL, PHONE, REDACT, Privacy

PRIVACY = Privacy(
    audit_log,
    {
        "complaint": {
            "complainant_name": REDACT,
            "complainant_email": EMAIL,
            "complainant_phone": PHONE,
            "subject": REDACT,
            "description": REDACT,
            "root_cause": REDACT,
            "resolution": REDACT,
            "rating_comment": REDACT,
        },
        "complaint_transition": {"note": REDACT},
        "complaint_note": {"body": REDACT},
        "complaint_action": {"description": REDACT},
    },
)
