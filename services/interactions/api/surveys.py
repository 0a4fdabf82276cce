"""Satisfaction surveys and the invitations to them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from services.interactions import repository as repo
from services.interactions import schemas, service
from services.interactions.api.common import (
    LIST_ERRORS,
    READ_ERRORS,
    Cursor,
    CustomerFilter,
    Limit,
    Since,
    SurveysReader,
    SurveysWriter,
    Until,
    shown,
    survey_read,
)
from shared.http import IdempotencyKeyHeader
from shared.idempotency import Reply, idempotent
from shared.pagination import DEFAULT_LIMIT, Page
from shared.problems import problem_responses

router = APIRouter(tags=["surveys"])


@router.post(
    "/surveys",
    status_code=201,
    summary="Submit a satisfaction survey",
    response_model=schemas.SurveyRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def submit_survey(
    ctx: SurveysWriter,
    body: schemas.SurveyCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record a customer's answers (needs `surveys:write`).

    Scores are 1-5 per dimension (`product_quality`, `service`, `price`, `delivery`,
    `after_sales`, `overall`); a score outside 1-5 is a 422 naming the field, e.g.
    `body.scores.service`. NPS 0-10, effort 1-7. Answering an invitation links it (each
    invitation once). Publishes `survey.submitted` (without the comment).
    """

    async def create() -> Reply:
        survey = await service.submit_survey(ctx, body)
        return Reply(survey_read(ctx, survey), 201, {"Location": f"/surveys/{survey.id}"})

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/surveys/{survey_id}",
    summary="Get a survey",
    response_model=schemas.SurveyRead,
    responses=READ_ERRORS,
)
async def get_survey(survey_id: uuid.UUID, ctx: SurveysReader) -> schemas.SurveyRead:
    """One survey response (needs `surveys:read`; the comment needs `pii:read`)."""
    [shown_one] = await shown(
        ctx, "survey", [await service.get_survey(ctx, survey_id)], survey_read
    )
    return shown_one


@router.get(
    "/surveys",
    summary="List surveys",
    response_model=Page[schemas.SurveyRead],
    responses=LIST_ERRORS,
)
async def list_surveys(
    ctx: SurveysReader,
    customer_id: CustomerFilter = None,
    context_type: schemas.ContextType | None = None,
    context_id: uuid.UUID | None = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[schemas.SurveyRead]:
    """Survey responses, newest first (needs `surveys:read`)."""
    rows, next_cursor = await repo.list_surveys(
        ctx.session,
        customer_id=customer_id,
        context_type=context_type,
        context_id=context_id,
        window=(since, until),
        cursor=cursor,
        limit=limit,
    )
    return Page(items=await shown(ctx, "survey", rows, survey_read), next_cursor=next_cursor)


@router.post(
    "/survey-invitations",
    status_code=201,
    summary="Invite a customer to a survey",
    response_model=schemas.InvitationRead,
    responses={
        **problem_responses(401, 403, 422),
        409: problem_responses(409)[409]
        | {
            "description": "Suppressed: the customer was invited within the suppression window "
            "(`suppressed_until` says when they can be asked again), or was erased."
        },
    },
)
async def invite(
    ctx: SurveysWriter,
    body: schemas.InvitationCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record that a customer is invited to a survey, unless asked recently (`surveys:write`).

    No customer is asked more than once per `survey_suppression_days` (default 30): a second
    invitation within the window is a 409 `survey-suppressed`; send the survey only on 201.
    Publishes `survey.invited`, on which the outreach service sends the customer a signed,
    single-use link to its survey page.
    """

    async def create() -> Reply:
        invitation = await service.invite_to_survey(ctx, body)
        read = schemas.InvitationRead.model_validate(invitation)
        return Reply(read, 201, {"Location": f"/survey-invitations/{invitation.id}"})

    return await idempotent(ctx, idempotency_key, create)


@router.get(
    "/survey-invitations/{invitation_id}",
    summary="Get a survey invitation",
    response_model=schemas.InvitationRead,
    responses=READ_ERRORS,
)
async def get_invitation(invitation_id: uuid.UUID, ctx: SurveysReader) -> schemas.InvitationRead:
    """One invitation and, once answered, its survey (needs `surveys:read`)."""
    return schemas.InvitationRead.model_validate(await service.get_invitation(ctx, invitation_id))
