"""The personal data profiles serves, declared once: what a caller without `pii:read` sees, and
which fields the audit log names when unmasked data goes out.

Consent records identify nobody (purpose, flag, channel, time): nothing to mask; their changes
are audited like any other.
"""

from __future__ import annotations

from services.profiles.models import audit_log
from shared.privacy import DROP, EMAIL, EMPTY_DICT, EMPTY_LIST, PERSON_NAME, PHONE, Privacy

PRIVACY = Privacy(
    audit_log,
    {
        "customer": {
            "display_name": PERSON_NAME,  # an organisation's name is not personal data
            "legal_name": DROP,
            "email": EMAIL,
            "phone": PHONE,
            "addresses": EMPTY_LIST,
            "notes": DROP,
            "custom_attributes": EMPTY_DICT,
        },
        "contact": {"name": PERSON_NAME, "email": EMAIL, "phone": PHONE, "notes": DROP},
        "need": {"description": DROP},
        "consent": {},
        # Old and new values of changes may be personal data (history needs `pii:read`).
        "history": {"changes": EMPTY_DICT},
        # A duplicate candidate as shown in data-quality work: its name only.
        "duplicates": {"display_name": PERSON_NAME},
    },
)
