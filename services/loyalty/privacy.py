"""The loyalty service's personal data, declared once.

Only the birthday (month and day, from the profile's important dates) is personal: sealed at
rest (`EncryptedText`), dropped for callers without `pii:read`, and erased with the customer.
Points, lots and the ledger are keyed by customer id and carry no personal data.
"""

from services.loyalty.models import audit_log
from shared.privacy import DROP, Privacy

PRIVACY = Privacy(audit_log, {"member": {"birthday": DROP}})
