"""HTTP routes of the profiles service, one module per resource: parse, call the service layer,
shape the response."""

from services.profiles.api import consents, contacts, customers, gdpr, imports, needs, quality

ROUTERS = [
    customers.router,
    imports.router,
    quality.router,
    contacts.router,
    needs.router,
    consents.router,
    gdpr.router,
]

OPENAPI_TAGS = [
    {"name": "customers", "description": "The customer archive: create, read, update, archive."},
    {"name": "data quality", "description": "Duplicate candidates and merging."},
    {"name": "contacts", "description": "Contact persons of organisation customers."},
    {"name": "needs", "description": "Business needs and requirements of customers."},
    {"name": "consent", "description": "Consent per purpose, with its full history."},
    {"name": "gdpr", "description": "Data export and erasure of a customer's personal data."},
]

__all__ = ["OPENAPI_TAGS", "ROUTERS"]
