"""Point 5: filters, text search, sorting, cursor pagination and incremental sync."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from services.profiles import service
from shared.context import RequestContext
from tests.profiles.factories import create_customer, unique


async def listing(client: httpx.AsyncClient, admin: dict[str, str], **params: Any) -> dict:
    response = await client.get("/customers", params=params, headers=admin)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def ids(client: httpx.AsyncClient, admin: dict[str, str], **params: Any) -> list[str]:
    return [c["id"] for c in (await listing(client, admin, **params))["items"]]


async def test_filters_by_owner_tag_industry_region_and_status(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    owner = f"owner-{unique()}"
    tag = f"t-{unique()}"
    a = await create_customer(client, admin, owner_id=owner, tags=[tag, "x"], industry="steel")
    b = await create_customer(client, admin, owner_id=owner, tags=[tag], region="west")
    c = await create_customer(client, admin, owner_id=owner, tags=["x"])
    await client.delete(f"/customers/{c['id']}", headers=admin)
    assert set(await ids(client, admin, owner_id=owner)) == {a["id"], b["id"], c["id"]}
    assert set(await ids(client, admin, owner_id=owner, tag=tag)) == {a["id"], b["id"]}
    assert await ids(client, admin, owner_id=owner, tag=[tag, "x"]) == [a["id"]]
    assert await ids(client, admin, owner_id=owner, industry="steel") == [a["id"]]
    assert await ids(client, admin, external_ref=b["external_ref"]) == [b["id"]]
    assert await ids(client, admin, owner_id=owner, region="west") == [b["id"]]
    assert await ids(client, admin, owner_id=owner, status="archived") == [c["id"]]
    assert set(await ids(client, admin, owner_id=owner, status="active")) == {a["id"], b["id"]}


async def test_text_search_substrings_of_non_pii_and_exact_pii_via_blind_index(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    u = unique()
    org = await create_customer(
        client, admin, kind="organisation", display_name=f"Jade Dragon Trading {u}"
    )
    person = await create_customer(
        client, admin, display_name=f"Wang Fang {u}", company_name=f"Acme Works {u}"
    )
    for q in (f"dragon trading {u}", org["customer_number"]):
        assert org["id"] in await ids(client, admin, q=q), q
    phone = person["phone"]  # E.164, e.g. +86139...; a local notation finds it too
    for q in (
        f"acme works {u}",  # company name: not personal data, substring search
        f"wang  FANG {u}",  # a person's full name: exact (normalised) match only
        person["email"].upper(),
        phone,
        " ".join((phone[3:6], phone[6:10], phone[10:])),
    ):
        assert person["id"] in await ids(client, admin, q=q), q
    # Parts of personal data are encrypted and no longer substring-searchable.
    for q in (f"Wang {u}", person["email"][:-4], phone[-8:]):
        assert person["id"] not in await ids(client, admin, q=q), q
    assert await ids(client, admin, q=f"nothing-{unique()}") == []


async def test_tier_and_lifecycle_filters_use_insights(
    app: FastAPI, client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    owner = f"owner-{unique()}"
    a = await create_customer(client, admin, owner_id=owner)
    b = await create_customer(client, admin, owner_id=owner)
    async with session_of() as session:
        at = datetime.now(UTC)
        ctx = RequestContext.system(session, app.state)
        await service.apply_insight(
            ctx, a["id"], "tier_changed_at", {"tier": "A", "tier_changed_at": at}
        )
        await service.apply_insight(
            ctx,
            b["id"],
            "lifecycle_changed_at",
            {"lifecycle_stage": "loyal", "lifecycle_changed_at": at},
        )
    assert await ids(client, admin, owner_id=owner, tier="A") == [a["id"]]
    assert await ids(client, admin, owner_id=owner, lifecycle_stage="loyal") == [b["id"]]


async def test_cursor_pagination_walks_every_customer_once_in_each_sort(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    owner = f"owner-{unique()}"
    created = [
        await create_customer(client, admin, owner_id=owner, display_name=f"N{i} {unique()}")
        for i in range(5)
    ]
    for sort in ("created_at", "-created_at", "display_name", "-customer_number", "updated_at"):
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"owner_id": owner, "limit": 2, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = await listing(client, admin, **params)
            seen.extend(c["id"] for c in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(c["id"] for c in created), sort
        assert len(seen) == 5
    by_number = [c["id"] for c in sorted(created, key=lambda c: c["customer_number"])]
    assert await ids(client, admin, owner_id=owner, sort="customer_number") == by_number
    assert await ids(client, admin, owner_id=owner, sort="-created_at") == by_number[::-1]


async def test_updated_since_returns_only_later_changes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    owner = f"owner-{unique()}"
    a = await create_customer(client, admin, owner_id=owner)
    b = await create_customer(client, admin, owner_id=owner)
    await asyncio.sleep(0.05)
    since = datetime.now(UTC).isoformat()
    await client.patch(
        f"/customers/{a['id']}", json={"region": "north"}, headers={**admin, "If-Match": '"1"'}
    )
    assert await ids(client, admin, owner_id=owner, updated_since=since, sort="updated_at") == [
        a["id"]
    ]
    assert set(await ids(client, admin, owner_id=owner, created_from=b["created_at"])) == {b["id"]}


async def test_time_filters_read_a_time_without_offset_as_utc_and_refuse_one_utc_cannot_name(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    owner = f"owner-{unique()}"
    created = await create_customer(client, admin, owner_id=owner)
    at = datetime.fromisoformat(created["created_at"]).astimezone(UTC)
    naive = at.replace(tzinfo=None).isoformat()  # the same instant, written without "+00:00"
    assert await ids(client, admin, owner_id=owner, created_from=naive) == [created["id"]]
    assert await ids(client, admin, owner_id=owner, created_to=naive) == []
    for name in ("created_from", "created_to", "updated_since", "updated_to"):
        bad = await client.get(
            "/customers", params={name: "0001-01-01T19:59:56+22:02"}, headers=admin
        )
        assert bad.status_code == 422, bad.text
        assert [e["field"] for e in bad.json()["errors"]] == [f"query.{name}"]


async def test_bad_cursor_is_400_and_bad_sort_is_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    bad = await client.get("/customers", params={"cursor": "!!!"}, headers=admin)
    assert bad.status_code == 400
    page = await listing(client, admin, limit=1, sort="created_at")
    if page["next_cursor"]:
        other = await client.get(
            "/customers",
            params={"cursor": page["next_cursor"], "sort": "display_name"},
            headers=admin,
        )
        assert other.status_code == 400
    assert (
        await client.get("/customers", params={"sort": "colour"}, headers=admin)
    ).status_code == 422


async def test_exact_personal_search_only_for_callers_who_may_read_it(
    client: httpx.AsyncClient, admin: dict[str, str], token: Callable[..., str]
) -> None:
    person = await create_customer(client, admin)
    email, phone = person["email"], person["phone"]
    analyst = {"Authorization": f"Bearer {token('analyst')}"}
    for q in (email, phone, person["display_name"]):
        assert await ids(client, admin, q=q) == [person["id"]]
        # Otherwise the search would tell anyone whether an e-mail belongs to a customer.
        assert await ids(client, analyst, q=q) == []
    assert await ids(client, analyst, q=person["customer_number"]) == [person["id"]]
