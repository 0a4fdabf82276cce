"""`make demo`: load a demo-sized data set into the running `make dev` stack via the public APIs.

    python -m bench.demo [--customers 300] [--seed 7]

Customers go in through the profiles bulk import; purchases, interactions and surveys through
interactions; complaints through complaints (some acknowledged and resolved). Afterwards the
analytics service shows tiers, satisfaction and SLA figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import httpx

from bench.datagen import customers
from shared.auth import issue_token
from shared.settings import ServiceSettings

URLS = {
    "profiles": "http://127.0.0.1:8001",
    "interactions": "http://127.0.0.1:8002",
    "complaints": "http://127.0.0.1:8003",
    "analytics": "http://127.0.0.1:8004",
}


async def load(count: int, seed: int, concurrency: int = 16) -> dict[str, int]:
    token = issue_token(ServiceSettings(), "admin", subject="demo-loader")
    headers = {"Authorization": f"Bearer {token}"}
    data = list(customers(count, seed))
    counts = {"customers": 0, "purchases": 0, "interactions": 0, "surveys": 0, "complaints": 0}
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        ndjson = "\n".join(json.dumps(c.body) for c in data)
        response = await client.post(
            f"{URLS['profiles']}/customers/import?allow_duplicates=true",
            content=ndjson,
            headers={"content-type": "application/x-ndjson"},
        )
        response.raise_for_status()
        ids = {
            row["external_ref"]: row["customer_id"]
            for row in response.json()["rows"]
            if row.get("customer_id")
        }
        counts["customers"] = len(ids)
        gate = asyncio.Semaphore(concurrency)

        async def post(service: str, path: str, body: dict[str, Any], kind: str) -> Any:
            async with gate:
                r = await client.post(f"{URLS[service]}{path}", json=body)
            if r.status_code >= 400:
                print(f"{path}: {r.status_code} {r.text[:200]}", file=sys.stderr)
                return None
            counts[kind] += 1
            return r

        async def one(customer: Any) -> None:
            customer_id = ids.get(customer.external_ref)
            if customer_id is None:
                return
            for purchase in customer.purchases:
                await post(
                    "interactions",
                    "/purchases",
                    {**purchase, "customer_id": customer_id},
                    "purchases",
                )
            for interaction in customer.interactions:
                await post(
                    "interactions",
                    "/interactions",
                    {**interaction, "customer_id": customer_id},
                    "interactions",
                )
            for survey in customer.surveys:
                await post(
                    "interactions", "/surveys", {**survey, "customer_id": customer_id}, "surveys"
                )
            for complaint in customer.complaints:
                created = await post(
                    "complaints",
                    "/complaints",
                    {**complaint, "customer_id": customer_id},
                    "complaints",
                )
                if created is not None:
                    await advance_complaint(client, created)

        await asyncio.gather(*(one(c) for c in data))
    return counts


async def advance_complaint(client: httpx.AsyncClient, created: httpx.Response) -> None:
    """Acknowledge most complaints and resolve some, so SLA figures have data."""
    complaint = created.json()
    url = f"{URLS['complaints']}/complaints/{complaint['id']}/transitions"
    etag = created.headers.get("etag")
    steps = [
        {"to_status": "acknowledged"},
        {"to_status": "investigating"},
        {
            "to_status": "resolved",
            "resolution": "Replaced the item",
            "root_cause_category": "process",
        },
    ]
    for step in steps[: 1 + hash(complaint["id"]) % 3]:
        r = await client.post(url, json=step, headers={"If-Match": etag or "*"})
        if r.status_code >= 400:
            return
        etag = r.headers.get("etag")


def main() -> None:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    counts = asyncio.run(load(args.customers, args.seed))
    print("loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print(f"see {URLS['analytics']}/docs (GET /tiers, /satisfaction, /complaints/stats)")


if __name__ == "__main__":
    main()
