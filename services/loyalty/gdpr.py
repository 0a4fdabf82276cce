"""The loyalty service's part of GDPR: export of a customer's points and rewards, erasure status.

Mounted by the platform as `GET /customers/{id}/export` and `GET /customers/{id}/erasure`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from services.loyalty import repository as repo
from shared.context import RequestContext
from shared.gdpr import GdprSpec, Holding


async def export(ctx: RequestContext, customer_id: uuid.UUID) -> Holding:
    """The member, its purchases, lots, ledger, redemptions, coupons and birthday, decrypted;
    a fixed number of queries (a merged duplicate's records are the survivor's)."""
    found = await repo.holdings(ctx.session, customer_id)
    data = json.loads(json.dumps(found, default=str))
    return Holding(data=data, erased_at=await repo.erased_at(ctx.session, customer_id))


async def erasure(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[bool, datetime | None]:
    holds = await repo.holds_anything(ctx.session, customer_id)
    return holds, await repo.erased_at(ctx.session, customer_id)


GDPR = GdprSpec(
    service="loyalty",
    export=export,
    erasure=erasure,
    kept_after_erasure=[
        "the points ledger, lots, purchases' amounts, redemptions and coupons by customer id "
        "(no personal data: needed for the programme's liability)",
    ],
    definitions={
        "level": "The highest level whose threshold the points earned by purchases in the "
        "trailing window (default 365 days, net of reversals) reach; up at once, down by one "
        "level at most at the monthly evaluation.",
    },
    export_description=(
        "`data.member`, `data.purchases`, `data.lots`, `data.ledger` (every points entry), "
        "`data.redemptions`, `data.coupons` and `data.birthday` (month-day, until erased)."
    ),
)
