"""GDPR across every service: the full export, erasure, and its progress per service.

Profiles' own document (`GET /customers/{id}/export`) is mounted from the shared `GdprSpec`
(`services.profiles.gdpr.GDPR`)."""

from __future__ import annotations

from typing import Annotated

from services.profiles import gdpr, service
from services.profiles.api.common import CustomerId, PiiReader, Reader
from services.profiles.api.common import router as new_router
from services.profiles.schemas import CustomerRead, ErasureStatus, GdprExport
from shared.context import RequestContext, context
from shared.problems import problem_responses

router = new_router()
Eraser = Annotated[RequestContext, context("customers:erase", "pii:read")]


@router.get(
    "/customers/{customer_id}/gdpr-export",
    tags=["gdpr"],
    summary="Export everything every service holds about a customer",
    response_model=GdprExport,
    responses=problem_responses(401, 403, 404, 422),
)
async def gdpr_export(ctx: PiiReader, customer_id: CustomerId) -> GdprExport:
    """One answer to a GDPR access request: profiles' own document plus the document of every
    other service holding customer data (by default interactions, complaints, analytics,
    subscriptions and outreach; `PROFILES_GDPR_PEERS`), each in its own section. A section is
    `ok` (its records in `data`) or `holds_nothing` when the service says so explicitly; a
    service that is down or slow (timeout `PROFILES_PEER_TIMEOUT_S`) is `unavailable`, one
    answering an HTTP error (a 404 included: a missing route is not "holds nothing") is
    `error`. The request itself still succeeds: `complete` is true only when every section is
    `ok` or `holds_nothing`. Needs `customers:read` and `pii:read`; recorded in the audit log."""
    return await gdpr.gdpr_export(ctx, customer_id)


@router.get(
    "/customers/{customer_id}/erasure",
    tags=["gdpr"],
    summary="Erasure status of a customer in every service",
    response_model=ErasureStatus,
    responses=problem_responses(401, 403, 404, 422),
)
async def erasure_status(ctx: Reader, customer_id: CustomerId) -> ErasureStatus:
    """Whether each service has erased the customer's personal data after
    `POST /customers/{id}/erasure` (the others do it when they consume `customer.erased`):
    profiles itself plus every peer's `GET /customers/{id}/erasure`, each `erased` (with what
    it `kept`: anonymous facts), `pending` or `holds_nothing`. `complete` is true once every
    service is `erased` or `holds_nothing`; an unreachable service (`unavailable`) or one
    answering an HTTP error (`error`, a 404 included: never counted as erased) keeps it false.
    Needs `customers:read`."""
    return await gdpr.erasure_status(ctx, customer_id)


@router.post(
    "/customers/{customer_id}/erasure",
    tags=["gdpr"],
    summary="Erase a customer's personal data",
    response_model=CustomerRead,
    responses=problem_responses(401, 403, 404, 422),
)
async def erase(ctx: Eraser, customer_id: CustomerId) -> CustomerRead:
    """GDPR erasure: names, e-mail, phone, addresses, notes and custom attributes of the
    customer (and of records merged into it), its contacts and needs are replaced by anonymous
    values, also in the change history; non-identifying facts (number, industry, region, tags,
    consent, needs' category and status) are kept. The customer is archived and cannot change
    any more. Needs `customers:erase` (roles `manager` and `admin`; agents may not erase) and
    `pii:read`. Publishes `customer.erased` so other services scrub their part; follow progress
    with `GET /customers/{id}/erasure`."""
    customer = await service.erase(ctx, customer_id)
    return await service.read_changed(ctx, customer)
