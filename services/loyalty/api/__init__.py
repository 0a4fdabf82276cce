"""HTTP routes of the loyalty service, one module per resource: parse, call the service layer,
shape the response."""

from services.loyalty.api import members, programme, redemptions, reports

ROUTERS = [members.router, redemptions.router, programme.router, reports.router]

OPENAPI_TAGS = [
    {"name": "members", "description": "Members, balances and the points ledger."},
    {"name": "redemptions", "description": "Spending points; coupons and their single use."},
    {"name": "programme", "description": "Membership levels and the rewards catalogue."},
    {"name": "reports", "description": "The programme's points liability."},
    {"name": "gdpr", "description": "Data export and erasure status of a customer."},
]

__all__ = ["OPENAPI_TAGS", "ROUTERS"]
