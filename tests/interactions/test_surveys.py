"""Satisfaction surveys: validated 1-5 scores, NPS, invitations with suppression."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from tests.interactions.factories import events, survey_body

PROBLEM = "application/problem+json"


async def test_score_6_on_a_1_to_5_question_is_422_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = survey_body(scores={"overall": 5, "service": 6})
    response = await client.post("/surveys", json=body, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["body.scores.service"]


async def test_nps_out_of_range_and_unknown_dimension_are_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/surveys", json=survey_body(nps=11, scores={"taste": 3}), headers=admin
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"body.nps", "body.scores.taste"} <= fields


async def test_submitted_survey_publishes_scores_without_the_comment(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    context = str(uuid.uuid4())
    body = survey_body(context_type="purchase", context_id=context)
    response = await client.post("/surveys", json=body, headers=admin)
    assert response.status_code == 201, response.text
    survey = response.json()
    assert survey["scores"] == {"overall": 5, "service": 4, "price": 3}
    [event] = await events(app, "survey.submitted", survey_id=survey["id"])
    assert event["scores"] == {"overall": 5, "service": 4, "price": 3}
    assert (event["nps"], event["effort"], event["context_id"]) == (9, 2, context)
    assert "comment" not in event


async def test_comment_is_redacted_without_pii_read(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    survey = (await client.post("/surveys", json=survey_body(), headers=admin)).json()
    analyst = {"Authorization": f"Bearer {token('analyst')}"}
    seen = await client.get(f"/surveys/{survey['id']}", headers=analyst)
    assert seen.status_code == 200
    assert seen.json()["comment"] == "[redacted]"
    assert seen.json()["scores"] == survey["scores"]


async def test_second_invitation_within_the_window_is_suppressed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = str(uuid.uuid4())
    first = await client.post(
        "/survey-invitations", json={"customer_id": customer, "channel": "email"}, headers=admin
    )
    assert first.status_code == 201, first.text
    second = await client.post(
        "/survey-invitations", json={"customer_id": customer, "channel": "sms"}, headers=admin
    )
    assert second.status_code == 409
    assert second.json()["type"].endswith("/survey-suppressed")
    assert second.json()["suppressed_until"] > first.json()["sent_at"]
    other = await client.post(
        "/survey-invitations", json={"customer_id": str(uuid.uuid4())}, headers=admin
    )
    assert other.status_code == 201


async def test_answering_an_invitation_links_it_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = str(uuid.uuid4())
    invitation = (
        await client.post("/survey-invitations", json={"customer_id": customer}, headers=admin)
    ).json()
    body = survey_body(uuid.UUID(customer), invitation_id=invitation["id"])
    answered = await client.post("/surveys", json=body, headers=admin)
    assert answered.status_code == 201
    linked = await client.get(f"/survey-invitations/{invitation['id']}", headers=admin)
    assert linked.json()["survey_id"] == answered.json()["id"]
    again = await client.post("/surveys", json=body, headers=admin)
    assert again.status_code == 409


async def test_list_surveys_by_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = uuid.uuid4()
    for _ in range(2):
        await client.post("/surveys", json=survey_body(customer), headers=admin)
    listed = await client.get(f"/surveys?customer_id={customer}", headers=admin)
    assert len(listed.json()["items"]) == 2
