"""Point 7: bulk import with a result per row, idempotent by external_ref."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa

from tests.profiles.factories import unique

NDJSON = {"Content-Type": "application/x-ndjson"}


def import_rows(n: int, batch: str) -> list[dict[str, Any]]:
    return [
        {
            "external_ref": f"imp-{batch}-{i}",
            "display_name": f"Imported {batch} {i}",
            "email": f"imp.{batch}.{i}@example.com",
            "tags": ["imported"],
            "region": "east",
        }
        for i in range(n)
    ]


async def test_ten_thousand_rows_with_three_bad_store_the_rest(
    client: httpx.AsyncClient, admin: dict[str, str], session_of: Callable[[], Any]
) -> None:
    batch = unique()
    rows: list[Any] = import_rows(10_000, batch)
    rows[9]["email"] = "not-an-email"
    del rows[4_999]["display_name"]
    rows[9_998]["phone"] = "12"
    body = "\n".join(json.dumps(r) for r in rows).encode()
    response = await client.post(
        "/customers/import", content=body, headers={**admin, **NDJSON}, timeout=120
    )
    assert response.status_code == 200, response.text[:2000]
    result = response.json()
    assert (result["created"], result["existing"], result["failed"]) == (9_997, 0, 3)
    errors = [r for r in result["rows"] if r["status"] == "error"]
    assert [(r["row"], r["errors"][0]["field"]) for r in errors] == [
        (10, "email"),
        (5_000, "display_name"),
        (9_999, "phone"),
    ]
    assert len(result["rows"]) == 10_000
    assert all(r["customer_number"].startswith("C-") for r in result["rows"] if r["customer_id"])
    async with session_of() as session:
        stored = await session.scalar(
            sa.text("SELECT count(*) FROM customers WHERE external_ref LIKE :p"),
            {"p": f"imp-{batch}-%"},
        )
        # By the ids the import returned, not a join on the fresh rows: before autovacuum
        # has analysed them the planner may pick a nested loop over the whole outbox.
        created_ids = [r["customer_id"] for r in result["rows"] if r["customer_id"]]
        events = await session.scalar(
            sa.text(
                "SELECT count(*) FROM outbox WHERE type = 'kehu.customer.created.v1' "
                "AND subject = ANY(CAST(:ids AS text[]))"
            ),
            {"ids": created_ids},
        )
    assert stored == events == len(created_ids) == 9_997

    again = await client.post(
        "/customers/import", content=body, headers={**admin, **NDJSON}, timeout=120
    )
    assert (again.json()["created"], again.json()["existing"], again.json()["failed"]) == (
        0,
        9_997,
        3,
    )
    first_ids = {r["row"]: r["customer_id"] for r in result["rows"]}
    assert all(first_ids[r["row"]] == r["customer_id"] for r in again.json()["rows"])


async def test_csv_import_and_duplicate_rows(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    u = unique()
    csv = (
        "external_ref,kind,display_name,email,phone,tags,industry\n"
        f"csv-{u}-1,person,Li {u},li.{u}@example.com,13912345670,vip;new,retail\n"
        f"csv-{u}-2,organisation,Org {u},,,,steel\n"
        f"csv-{u}-1,person,Again {u},,,,\n"
        f",person,No ref {u},,,,\n"
        f"csv-{u}-5,person,Same mail {u},LI.{u}@example.com,,,\n"
    )
    response = await client.post(
        "/customers/import", content=csv.encode(), headers={**admin, "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert [r["status"] for r in rows] == ["created", "created", "error", "error", "error"]
    assert rows[4]["errors"][0]["field"] == "email"
    first = (await client.get(f"/customers/{rows[0]['customer_id']}", headers=admin)).json()
    assert first["tags"] == ["vip", "new"] and first["phone"] == "+8613912345670"


async def test_import_rejects_unknown_format_and_too_many_rows(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    xml = await client.post(
        "/customers/import", content=b"<x/>", headers={**admin, "Content-Type": "text/xml"}
    )
    assert xml.status_code == 415
    lines = "\n".join(json.dumps(r) for r in import_rows(10_001, unique())).encode()
    big = await client.post("/customers/import", content=lines, headers={**admin, **NDJSON})
    assert big.status_code == 413


async def test_json_array_import_reports_each_row(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    rows = [*import_rows(2, unique()), "not an object", {"display_name": "No ref"}]
    response = await client.post("/customers/import", json=rows, headers=admin)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [r["status"] for r in result["rows"]] == ["created", "created", "error", "error"]
    assert result["rows"][3]["errors"][0]["field"] == "external_ref"
    not_a_list = await client.post("/customers/import", json={"rows": []}, headers=admin)
    assert not_a_list.status_code == 422
