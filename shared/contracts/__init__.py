"""Event contracts shared by every service, one module per publishing domain.

Topics: one per publishing service; the key is always the customer id.
"""

CUSTOMERS_TOPIC = "kehu.customers"
INTERACTIONS_TOPIC = "kehu.interactions"
COMPLAINTS_TOPIC = "kehu.complaints"
ANALYTICS_TOPIC = "kehu.analytics"
SUBSCRIPTIONS_TOPIC = "kehu.subscriptions"
LOYALTY_TOPIC = "kehu.loyalty"
OUTREACH_TOPIC = "kehu.outreach"
DOMAIN_TOPICS = (
    CUSTOMERS_TOPIC,
    INTERACTIONS_TOPIC,
    COMPLAINTS_TOPIC,
    ANALYTICS_TOPIC,
    LOYALTY_TOPIC,
    OUTREACH_TOPIC,
)


def load_all() -> None:
    """Import every contract module so the registry knows every event type."""
    from shared.contracts import (  # noqa: F401
        analytics,
        cases,
        complaints,
        customers,
        interactions,
        loyalty,
        outreach,
        subscriptions,
    )
