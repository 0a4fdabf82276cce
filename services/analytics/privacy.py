"""Analytics' personal data: per-customer profiling (tier, RFM, lifecycle, churn risk) keyed by
the customer's id, with non-identifying dimensions. Readers hold `analytics:read`; nothing
free-text or contact-like is stored, so nothing is masked. What the declaration brings is the
audit trail (`audit_log`, `GET /audit`): GDPR exports and admin changes are recorded."""

from __future__ import annotations

from services.analytics.models import audit_log
from shared.privacy import Privacy

PRIVACY = Privacy(audit_log, {})
