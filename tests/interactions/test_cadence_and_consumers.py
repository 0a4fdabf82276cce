"""Revisit cadence by tier and the events consumed from profiles and analytics."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from shared.contracts.analytics import CustomerTierChanged
from shared.contracts.customers import (
    CustomerCreated,
    CustomerDimensions,
    CustomerErased,
    CustomerMerged,
    ImportantDate,
)
from tests.helpers import eventually
from tests.interactions.factories import (
    events,
    followup_body,
    interaction_body,
    iso,
    now,
    processed,
    produce,
    purchase_body,
    scalar,
    survey_body,
)

CONSUMER_TIMEOUT = 60.0  # the consumer group's first join on Tansu takes a few seconds


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def cadence(client: httpx.AsyncClient, admin: dict[str, str], customer: Any) -> Any:
    response = await client.get(f"/customers/{customer}/cadence", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_contact_plans_the_next_revisit_by_the_default_cadence(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    contacted = now() - timedelta(days=2)
    await client.post(
        "/interactions", json=interaction_body(customer, occurred_at=iso(contacted)), headers=admin
    )
    # An unanswered call is not a contact: the plan stays on the last real one.
    await client.post(
        "/interactions",
        json=interaction_body(customer, occurred_at=iso(now()), outcome="no_answer"),
        headers=admin,
    )
    plan = await cadence(client, admin, customer)
    assert (plan["tier"], plan["effective_cadence_days"]) == (None, 90)
    assert at(plan["last_contact_at"]) == contacted
    assert at(plan["next_revisit_at"]) == contacted + timedelta(days=90)


async def test_cadence_override_moves_the_next_revisit_and_can_be_removed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    contacted = now() - timedelta(days=1)
    await client.post(
        "/interactions", json=interaction_body(customer, occurred_at=iso(contacted)), headers=admin
    )
    url = f"/customers/{customer}/cadence"
    plan = (await client.put(url, json={"cadence_days": 7}, headers=admin)).json()
    assert at(plan["next_revisit_at"]) == contacted + timedelta(days=7)
    plan = (await client.put(url, json={"cadence_days": None}, headers=admin)).json()
    assert at(plan["next_revisit_at"]) == contacted + timedelta(days=90)
    assert (await client.put(url, json={"cadence_days": 0}, headers=admin)).status_code == 422


async def test_a_tier_change_event_moves_the_next_revisit_date(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    contacted = now() - timedelta(days=1)
    await client.post(
        "/interactions", json=interaction_body(customer, occurred_at=iso(contacted)), headers=admin
    )
    assert at((await cadence(client, admin, customer))["next_revisit_at"]) == contacted + timedelta(
        days=90
    )
    await produce(
        app.state.settings,
        CustomerTierChanged(
            customer_id=customer,
            occurred_at=now(),
            tier="A",
            previous_tier="C",
            contribution=Decimal("125000.00"),
        ),
    )

    async def moved() -> bool:
        plan = await cadence(client, admin, customer)
        return plan["tier"] == "A" and at(plan["next_revisit_at"]) == contacted + timedelta(days=14)

    await eventually(moved, timeout=CONSUMER_TIMEOUT)
    # An older tier change arriving late does not undo the newer one.
    [late] = await produce(
        app.state.settings,
        CustomerTierChanged(
            customer_id=customer,
            occurred_at=now() - timedelta(days=30),
            tier="B",
            previous_tier=None,
            contribution=Decimal("100.00"),
        ),
    )
    await eventually(lambda: processed(app, late), timeout=CONSUMER_TIMEOUT)
    plan = await cadence(client, admin, customer)
    assert (plan["tier"], plan["effective_cadence_days"]) == ("A", 14)


async def test_a_due_revisit_creates_one_revisit_followup_closed_by_the_next_contact(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    contacted = now() - timedelta(days=95)  # untiered: every 90 days, so due 5 days ago
    await client.post(
        "/interactions", json=interaction_body(customer, occurred_at=iso(contacted)), headers=admin
    )

    async def revisits() -> list[Any]:
        response = await client.get(
            f"/followups?customer_id={customer}&kind=revisit", headers=admin
        )
        items: list[Any] = response.json()["items"]
        return items

    async def created() -> bool:
        return bool(await revisits())

    await eventually(created, timeout=30)
    [revisit] = await revisits()
    assert (revisit["origin"], revisit["status"]) == ("cadence", "open")
    assert at(revisit["due_at"]) == contacted + timedelta(days=90)

    # The plan moves (here an override; a tier change does the same): the open revisit moves.
    await client.put(f"/customers/{customer}/cadence", json={"cadence_days": 60}, headers=admin)

    async def rescheduled() -> bool:
        items = await revisits()
        return len(items) == 1 and at(items[0]["due_at"]) == contacted + timedelta(days=60)

    await eventually(rescheduled, timeout=30)
    assert len(await events(app, "followup.scheduled", followup_id=revisit["id"])) == 2

    # The next contact is the revisit: it closes the planned follow-up and re-plans.
    contact = await client.post("/interactions", json=interaction_body(customer), headers=admin)
    [done] = await revisits()
    assert (done["status"], done["interaction_id"]) == ("done", contact.json()["id"])
    [completed] = await events(app, "followup.completed", followup_id=revisit["id"])
    assert completed["interaction_id"] == contact.json()["id"]
    plan = await cadence(client, admin, customer)
    assert at(plan["next_revisit_at"]) == at(contact.json()["occurred_at"]) + timedelta(days=60)


async def test_important_dates_from_customer_events_create_care_followups(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    soon = (now() + timedelta(days=3)).date()
    owner = f"agent-{uuid.uuid4().hex[:6]}"
    await produce(
        app.state.settings,
        CustomerCreated(
            customer_id=customer,
            occurred_at=now(),
            dimensions=CustomerDimensions(
                kind="person",
                customer_number=f"C-{uuid.uuid4().hex[:6]}",
                owner_id=owner,
                important_dates=[ImportantDate(kind="birthday", month=soon.month, day=soon.day)],
            ),
        ),
    )

    async def care() -> list[Any]:
        response = await client.get(f"/followups?customer_id={customer}&kind=care", headers=admin)
        items: list[Any] = response.json()["items"]
        return items

    async def created() -> bool:
        return bool(await care())

    await eventually(created, timeout=CONSUMER_TIMEOUT)
    [followup] = await care()
    assert (followup["origin"], followup["assignee_id"]) == ("important_date", owner)
    assert at(followup["due_at"]).date() == soon


async def test_merge_repoints_the_duplicates_records_to_the_survivor(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor, duplicate = uuid.uuid4(), uuid.uuid4()
    shared_ref = f"SO-{uuid.uuid4().hex[:8]}"
    await client.post(
        "/purchases", json=purchase_body(survivor, external_ref=shared_ref), headers=admin
    )
    moved = (
        await client.post(
            "/purchases", json=purchase_body(duplicate, external_ref=shared_ref), headers=admin
        )
    ).json()
    contact = (
        await client.post("/interactions", json=interaction_body(duplicate), headers=admin)
    ).json()
    await produce(
        app.state.settings,
        CustomerMerged(customer_id=survivor, occurred_at=now(), merged_customer_id=duplicate),
    )

    async def repointed() -> bool:
        response = await client.get(f"/interactions/{contact['id']}", headers=admin)
        return bool(response.json()["customer_id"] == str(survivor))

    await eventually(repointed, timeout=CONSUMER_TIMEOUT)
    purchase = (await client.get(f"/purchases/{moved['id']}", headers=admin)).json()
    assert purchase["customer_id"] == str(survivor)
    assert purchase["external_ref"].startswith(shared_ref)
    timeline = await client.get(f"/customers/{survivor}/timeline", headers=admin)
    assert len(timeline.json()["items"]) == 3
    # Later writes for the duplicate land on the survivor.
    late = await client.post("/surveys", json=survey_body(duplicate), headers=admin)
    assert late.json()["customer_id"] == str(survivor)
    assert (await cadence(client, admin, duplicate))["customer_id"] == str(survivor)


async def test_purchases_and_contacts_posted_for_a_merged_duplicate_go_to_the_survivor(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor, duplicate = uuid.uuid4(), uuid.uuid4()
    await produce(
        app.state.settings,
        CustomerMerged(customer_id=survivor, occurred_at=now(), merged_customer_id=duplicate),
    )

    async def merged() -> bool:
        return bool((await cadence(client, admin, duplicate))["customer_id"] == str(survivor))

    await eventually(merged, timeout=CONSUMER_TIMEOUT)
    contacted = now() - timedelta(days=1)
    purchase = await client.post("/purchases", json=purchase_body(duplicate), headers=admin)
    contact = await client.post(
        "/interactions", json=interaction_body(duplicate, occurred_at=iso(contacted)), headers=admin
    )
    assert purchase.status_code == contact.status_code == 201, (purchase.text, contact.text)
    assert purchase.json()["customer_id"] == contact.json()["customer_id"] == str(survivor)
    stored = (await client.get(f"/purchases/{purchase.json()['id']}", headers=admin)).json()
    assert stored["customer_id"] == str(survivor)
    assert at((await cadence(client, admin, survivor))["last_contact_at"]) == contacted
    logged = await events(app, "interaction.logged", interaction_id=contact.json()["id"])
    assert [e["customer_id"] for e in logged] == [str(survivor)]


async def test_erasure_scrubs_free_text_and_keeps_amounts_and_scores(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    contact = (
        await client.post("/interactions", json=interaction_body(customer), headers=admin)
    ).json()
    survey = (await client.post("/surveys", json=survey_body(customer), headers=admin)).json()
    purchase = (await client.post("/purchases", json=purchase_body(customer), headers=admin)).json()
    followup = (await client.post("/followups", json=followup_body(customer), headers=admin)).json()
    await produce(app.state.settings, CustomerErased(customer_id=customer, occurred_at=now()))

    async def scrubbed() -> bool:
        response = await client.get(f"/interactions/{contact['id']}", headers=admin)
        return response.json()["summary"] is None

    await eventually(scrubbed, timeout=CONSUMER_TIMEOUT)
    interaction = (await client.get(f"/interactions/{contact['id']}", headers=admin)).json()
    assert (interaction["contact_person"], interaction["subject"]) == (None, None)
    assert interaction["channel"] == contact["channel"]
    kept = (await client.get(f"/surveys/{survey['id']}", headers=admin)).json()
    assert (kept["comment"], kept["scores"], kept["nps"]) == (None, survey["scores"], 9)
    money = (await client.get(f"/purchases/{purchase['id']}", headers=admin)).json()
    assert (money["amount"], money["margin"]) == (purchase["amount"], purchase["margin"])
    task = (await client.get(f"/followups/{followup['id']}", headers=admin)).json()
    assert (task["status"], task["note"]) == ("cancelled", None)
    refused = await client.post("/interactions", json=interaction_body(customer), headers=admin)
    assert refused.status_code == 409
    etag = {**admin, "If-Match": f'"{interaction["version"]}"'}
    rewrite = await client.patch(
        f"/interactions/{contact['id']}", json={"summary": "again"}, headers=etag
    )
    assert rewrite.status_code == 409


async def test_an_older_profile_event_arriving_late_does_not_undo_a_newer_one(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = uuid.uuid4()
    soon = (now() + timedelta(days=2)).date()

    def created(at_: datetime, dates: list[ImportantDate]) -> CustomerCreated:
        return CustomerCreated(
            customer_id=customer,
            occurred_at=at_,
            dimensions=CustomerDimensions(
                kind="organisation", customer_number="C-1", important_dates=dates
            ),
        )

    newer = created(now(), [])  # the dates were removed later...
    older = created(
        now() - timedelta(hours=1),
        [ImportantDate(kind="founding_day", month=soon.month, day=soon.day)],
    )
    ids = await produce(app.state.settings, newer, older)  # ...and the older event comes last
    await eventually(lambda: processed(app, ids[-1]), timeout=CONSUMER_TIMEOUT)
    dates = await scalar(
        app, "SELECT important_dates FROM customer_state WHERE customer_id = :c", c=customer
    )
    assert dates == []
    care = await client.get(f"/followups?customer_id={customer}&kind=care", headers=admin)
    assert care.json()["items"] == []


async def test_batched_profile_and_tier_events_keep_merge_and_erasure_semantics(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor, duplicate, erased = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    soon = (now() + timedelta(days=2)).date()
    dates = [ImportantDate(kind="birthday", month=soon.month, day=soon.day)]

    def created(customer: uuid.UUID) -> CustomerCreated:
        return CustomerCreated(
            customer_id=customer,
            occurred_at=now(),
            dimensions=CustomerDimensions(
                kind="person", customer_number="C-9", important_dates=dates, owner_id="u-7"
            ),
        )

    def tier(customer: uuid.UUID, value: str) -> CustomerTierChanged:
        return CustomerTierChanged(
            customer_id=customer,
            occurred_at=now(),
            tier=value,
            previous_tier=None,
            contribution=Decimal("10.00"),
        )

    # Profile events first (one topic; each customer's events in order on its partition)...
    profile_events = await produce(
        app.state.settings,
        created(survivor),
        created(duplicate),
        created(erased),
        CustomerMerged(customer_id=survivor, occurred_at=now(), merged_customer_id=duplicate),
        CustomerErased(customer_id=erased, occurred_at=now()),  # right after its creation
    )
    for event_id in profile_events:
        await eventually(lambda e=event_id: processed(app, e), timeout=CONSUMER_TIMEOUT)
    # ...then a wave of tier changes, one for the merged duplicate.
    tier_events = await produce(app.state.settings, tier(duplicate, "A"), tier(erased, "B"))
    for event_id in tier_events:
        await eventually(lambda e=event_id: processed(app, e), timeout=CONSUMER_TIMEOUT)
    rows = {
        c: await scalar(
            app,
            "SELECT json_build_object('tier', tier, 'owner', owner_id, 'dates', important_dates,"
            " 'erased', erased_at IS NOT NULL) FROM customer_state WHERE customer_id = :c",
            c=c,
        )
        for c in (survivor, erased)
    }
    assert rows[survivor]["tier"] == "A" and rows[survivor]["owner"] == "u-7"
    assert rows[survivor]["dates"] == [d.model_dump(mode="json") for d in dates]
    assert rows[erased] == {"tier": "B", "owner": None, "dates": [], "erased": True}
