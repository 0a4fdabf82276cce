"""What every router of the service shares: query parameters, error sets, the read views."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query

from services.interactions import schemas
from services.interactions.models import Followup, Interaction, Refund, Survey
from services.interactions.service import settings_of
from shared.context import RequestContext, context
from shared.contracts.common import UtcDatetime
from shared.http import etag_of
from shared.pagination import MAX_LIMIT
from shared.problems import problem_responses

# The request context of a caller holding the scope named.
InteractionsReader = Annotated[RequestContext, context("interactions:read")]
InteractionsWriter = Annotated[RequestContext, context("interactions:write")]
FollowupsReader = Annotated[RequestContext, context("followups:read")]
FollowupsWriter = Annotated[RequestContext, context("followups:write")]
PurchasesReader = Annotated[RequestContext, context("purchases:read")]
PurchasesWriter = Annotated[RequestContext, context("purchases:write")]
# The hot writes (POST /interactions, POST /purchases): one autocommitted statement, no
# session unless an Idempotency-Key or a write in a transaction asks for one.
InteractionsCreator = Annotated[RequestContext, context("interactions:write", lazy=True)]
PurchasesCreator = Annotated[RequestContext, context("purchases:write", lazy=True)]
SurveysReader = Annotated[RequestContext, context("surveys:read")]
SurveysWriter = Annotated[RequestContext, context("surveys:write")]

R = TypeVar("R")
V = TypeVar("V")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
]
CustomerFilter = Annotated[uuid.UUID | None, Query(description="Only this customer's records.")]
Since = Annotated[
    UtcDatetime | None, Query(alias="from", description="From this time (inclusive).")
]
Until = Annotated[UtcDatetime | None, Query(alias="to", description="Before this time.")]

ETAG_HEADER = {"ETag": {"description": "The resource's version; send it as If-Match to update."}}
WRITE_ERRORS = problem_responses(401, 403, 409, 422)
UPDATE_ERRORS = problem_responses(401, 403, 404, 409, 412, 422, 428)
READ_ERRORS = problem_responses(401, 403, 404)
LIST_ERRORS = problem_responses(400, 401, 403, 422)


# -- read views: personal fields masked for callers without `pii:read` ---------------------------


def interaction_read(ctx: RequestContext, i: Interaction) -> schemas.InteractionRead:
    return ctx.mask("interaction", schemas.InteractionRead.model_validate(i))


def followup_read(
    ctx: RequestContext, f: Followup, now: datetime | None = None
) -> schemas.FollowupRead:
    return ctx.mask("followup", schemas.FollowupRead.of(f, now or ctx.now()))


def refund_read(ctx: RequestContext, r: Refund) -> schemas.RefundRead:
    return ctx.mask("refund", schemas.RefundRead.model_validate(r))


def survey_read(ctx: RequestContext, s: Survey) -> schemas.SurveyRead:
    return ctx.mask("survey", schemas.SurveyRead.model_validate(s))


def cadence_read(ctx: RequestContext, state: Any) -> schemas.CadenceRead:
    return schemas.CadenceRead.of(state, settings_of(ctx).cadence_days(state.tier))


async def shown(
    ctx: RequestContext,
    resource: str,
    records: Sequence[R],
    view: Callable[[RequestContext, R], V],
) -> list[V]:
    """The records as this caller may see them; the unmasked personal data they carry to the
    caller is written to the audit log (one entry per customer)."""
    await ctx.audit_reads((resource, r, getattr(r, "customer_id", None)) for r in records)
    return [view(ctx, r) for r in records]


def created_headers(record: Any, location: str) -> dict[str, str]:
    """The ETag and Location of a newly created record."""
    return {"ETag": etag_of(record.version), "Location": f"{location}/{record.id}"}
