"""The seven hot paths `make bench` holds to their same-work baselines, as requests.

Each path is sent the same way to the product and to its baseline (`bench/samework.py`): by wrk
with `bench/request.lua` for the maximum rate, and by `send` for the fixed-rate latency and for
`bench/trace.py`. `prepare_paths` creates what the paths read and change: 120 customers of
one industry and region (the filtered list returns a full page of 50).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

LIST_FILTER = "industry=bench-retail&region=bench-east&limit=50"


@dataclass
class HotPath:
    name: str
    service: str
    method: str
    path: str  # may hold {{id}}: one of `ids`, in turn
    body: str | None = None  # JSON text; {{n}} is unique per request, {{id}} one of `ids`
    if_match: str | None = None
    marker: str = "audit_log"  # a word of the path's SQL, to find its backend in a trace
    ids: list[str] = field(default_factory=list)

    def render(self) -> tuple[str, str | None]:
        n = uuid.uuid4().hex[:16]
        target = random.choice(self.ids) if self.ids else ""
        path = self.path.replace("{{id}}", target)
        body = self.body.replace("{{n}}", n).replace("{{id}}", target) if self.body else None
        return path, body

    async def send(self, client: httpx.AsyncClient, base_url: str | None = None) -> httpx.Response:
        path, body = self.render()
        headers = {"content-type": "application/json"} if body is not None else {}
        if self.if_match:
            headers["If-Match"] = self.if_match
        url = (base_url or self.base_url) + path
        return await client.request(self.method, url, content=body, headers=headers)

    base_url: str = ""

    def wrk_env(self, token: str) -> dict[str, str]:
        env = {
            "BENCH_METHOD": self.method,
            "BENCH_PATH": self.path,
            "BENCH_IDS": ",".join(self.ids),
            "BENCH_AUTH": token,
        }
        if self.body is not None:
            env["BENCH_BODY"] = self.body
        if self.if_match:
            env["BENCH_IF_MATCH"] = self.if_match
        return env


CUSTOMER_BODY = (
    '{"display_name": "Bench {{n}}", "email": "bench.{{n}}@example.com", '
    '"legal_name": "Bench {{n}} Ltd", "kind": "person", "company_name": "Co {{n}}", '
    '"industry": "retail", "region": "east", "notes": "Met at the fair", "tags": ["bench"]}'
)
PATCH_BODY = '{"notes": "Called back {{n}}", "region": "east-{{n}}"}'
PURCHASE_BODY = (
    '{"customer_id": "{{id}}", "external_ref": "b-{{n}}", "occurred_at": "2026-11-01T10:00:00Z",'
    ' "amount": "120.00", "cost": "80.00", "currency": "CNY"}'
)
INTERACTION_BODY = (
    '{"customer_id": "{{id}}", "channel": "phone", "direction": "outbound", '
    '"occurred_at": "2026-11-20T09:30:00Z", "duration_seconds": 300, '
    '"contact_person": "Li Wei", "subject": "Review {{n}}", '
    '"summary": "Reviewed the order history; wants a quote.", "outcome": "resolved", '
    '"agent_id": "agent-1"}'
)
COMPLAINT_BODY = (
    '{"customer_id": "{{id}}", "channel": "email", '
    '"complainant": {"name": "Maija Virtanen", "email": "maija@example.com"}, '
    '"subject": "Parcel damaged {{n}}", "description": "The box was crushed.", '
    '"category": "delivery", "severity": "medium"}'
)

HOT_PATHS: list[HotPath] = [
    HotPath("GET /customers/{id}", "profiles", "GET", "/customers/{{id}}"),
    HotPath("GET /customers (filtered page of 50)", "profiles", "GET", f"/customers?{LIST_FILTER}"),
    HotPath("POST /customers", "profiles", "POST", "/customers", CUSTOMER_BODY),
    HotPath(
        "PATCH /customers/{id}", "profiles", "PATCH", "/customers/{{id}}", PATCH_BODY, if_match="*"
    ),
    HotPath("POST /purchases", "interactions", "POST", "/purchases", PURCHASE_BODY),
    HotPath("POST /interactions", "interactions", "POST", "/interactions", INTERACTION_BODY),
    HotPath("POST /complaints", "complaints", "POST", "/complaints", COMPLAINT_BODY),
]


async def seed_customers(client: httpx.AsyncClient, profiles: str, n: int = 120) -> list[str]:
    """Customers the paths read and change: one industry and region, PII in four fields."""
    ids = []
    for _ in range(n):
        tag = uuid.uuid4().hex[:10]
        response = await client.post(
            f"{profiles}/customers",
            json={
                "display_name": f"Seed {tag}",
                "email": f"seed.{tag}@example.com",
                # Eight digits of the fresh tag: another seeding of the same databases (the
                # 2-worker stack) must not meet a phone already taken (409 duplicate).
                "phone": f"+86 139 {int(tag[:8], 16) % 10**8:08d}",
                "kind": "person",
                "company_name": f"Seed Co {tag}",
                "industry": "bench-retail",
                "region": "bench-east",
                "notes": "Seeded for the bench",
            },
        )
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids


async def prepare_paths(
    client: httpx.AsyncClient, urls: dict[str, str], customers: list[str] | None = None
) -> list[HotPath]:
    """The hot paths aimed at `urls` (service -> base URL), with the seeded ids filled in."""
    ids = customers or await seed_customers(client, urls["profiles"])
    paths = []
    for path in HOT_PATHS:
        copy = HotPath(**{**path.__dict__, "ids": list(ids)})
        copy.base_url = urls[path.service]
        paths.append(copy)
    return paths


def describe(paths: list[HotPath]) -> list[dict[str, Any]]:
    return [{"name": p.name, "method": p.method, "path": p.path} for p in paths]
