"""How a customer wants to be reached: time zone, locale, channel; and the consent outreach
holds (as profiles published it)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from services.outreach import service
from services.outreach.api.common import Reader, Writer
from services.outreach.models import Customer
from services.outreach.schemas import ConsentRead, PreferencesRead, PreferencesWrite
from shared.http import IfMatch, set_etag
from shared.problems import problem_responses

router = APIRouter(tags=["preferences"])


def _read(row: Customer, consents: list[ConsentRead]) -> PreferencesRead:
    return PreferencesRead(
        customer_id=row.customer_id,
        timezone=row.timezone,
        locale=row.locale,
        channel=row.channel,
        language=row.language,
        preferred_channel=row.preferred_channel,
        consents=consents,
        version=row.version,
    )


@router.get(
    "/customers/{customer_id}/preferences",
    summary="A customer's contact preferences and consent",
    response_model=PreferencesRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_preferences(
    customer_id: uuid.UUID, ctx: Reader, response: Response
) -> PreferencesRead:
    """Time zone (for quiet hours), locale and channel set here, the profile's language and
    preferred channel, and the current consent per purpose (needs `outreach:read`)."""
    row, consents = await service.preferences(ctx, customer_id)
    set_etag(response, row.version)
    return _read(row, [ConsentRead.model_validate(c, from_attributes=True) for c in consents])


@router.put(
    "/customers/{customer_id}/preferences",
    summary="Set a customer's contact preferences",
    response_model=PreferencesRead,
    responses=problem_responses(401, 403, 409, 412, 422, 428),
)
async def put_preferences(
    customer_id: uuid.UUID,
    body: PreferencesWrite,
    ctx: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> PreferencesRead:
    """Replace the time zone (IANA name, e.g. `Asia/Shanghai`), locale and channel. Changing
    preferences outreach already holds needs `If-Match` (428 without, 412 when stale). Consent
    is not set here: it is the customer's, recorded in profiles. Needs `outreach:write`."""
    row = await service.set_preferences(ctx, customer_id, body, if_match)
    _, consents = await service.preferences(ctx, customer_id)
    set_etag(response, row.version)
    return _read(row, [ConsentRead.model_validate(c, from_attributes=True) for c in consents])
