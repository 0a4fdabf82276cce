"""Event contracts shared by every service, one module per publishing domain.

Topics: one per publishing service; the key is always the customer id.
"""

CUSTOMERS_TOPIC = "kehu.customers"
INTERACTIONS_TOPIC = "kehu.interactions"
COMPLAINTS_TOPIC = "kehu.complaints"
ANALYTICS_TOPIC = "kehu.analytics"
DOMAIN_TOPICS = (CUSTOMERS_TOPIC, INTERACTIONS_TOPIC, COMPLAINTS_TOPIC, ANALYTICS_TOPIC)
