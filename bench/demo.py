"""`make demo`: load a demo-sized data set into the running `make dev` stack via the public APIs.

    python -m bench.demo [--customers 300] [--seed 7] [--max-attempts 8] [--max-wait 30]

Customers go in through the profiles bulk import; purchases, interactions and surveys through
interactions; complaints through complaints (some acknowledged and resolved). Afterwards the
analytics service shows tiers, satisfaction and SLA figures.

The services limit each client's request rate (429) and shed load when a dependency is down
(503): the loader waits as long as their `Retry-After` says, and counts a record as failed once
it was refused `--max-attempts` times in a row while no request of the loader got through. It
reports what the services stored, not what it planned. Running it again stores nothing twice:
customers and purchases are idempotent by `external_ref`, the other records are sent with an
`Idempotency-Key` derived from their content (the data set is pinned to the day, so a second run
on the same day sends the same records).
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
RETRY_STATUSES = frozenset({429, 503})
KINDS = ("customers", "purchases", "interactions", "surveys", "complaints", "complaint steps")


def retry_delay(retry_after: str | None, attempt: int, now: datetime | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`: what `Retry-After` says (delta-seconds or
    an HTTP date), else an exponential back-off from half a second."""
    if retry_after:
        value = retry_after.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            now = now or datetime.now(UTC)
            return max(0.0, (when - now).total_seconds())
    return 0.5 * 2**attempt


@dataclass
class Tally:
    """What the services stored, per kind, and what failed, per kind and status."""

    created: Counter[str] = field(default_factory=Counter)
    existing: Counter[str] = field(default_factory=Counter)  # stored by an earlier run
    failed: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    retried: Counter[str] = field(default_factory=Counter)  # answers waited out, per status

    @property
    def failures(self) -> int:
        return sum(sum(statuses.values()) for statuses in self.failed.values())

    def lines(self) -> list[str]:
        lines = []
        for kind in [*KINDS, *sorted(set(self.failed) - set(KINDS))]:
            new, old = self.created[kind], self.existing[kind]
            failed = self.failed.get(kind)
            if not (new or old or failed):
                continue
            line = f"{kind}: {new + old} stored ({new} new, {old} already there)"
            if failed:
                statuses = ", ".join(f"{n} x {status}" for status, n in sorted(failed.items()))
                line += f"; {sum(failed.values())} failed ({statuses})"
            lines.append(line)
        if self.retried:
            waited = ", ".join(f"{n} x {status}" for status, n in sorted(self.retried.items()))
            lines.append(f"retried after Retry-After: {waited}")
        return lines


class Sender:
    """Sends one record, waiting out 429 and 503 answers, and tallies what came of it.

    A 429 or 503 pauses every request of the loader (not only the one that got it) until its
    `Retry-After` has passed: the limit is per client, so the other requests would only be
    refused too.
    """

    def __init__(
        self,
        tally: Tally,
        max_attempts: int = 8,
        max_wait: float = 30.0,
        concurrency: int = 16,
    ) -> None:
        self.tally = tally
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.gate = asyncio.Semaphore(concurrency)
        self.resume_at = 0.0
        self.answered = 0  # successful answers to any request, for `send` to see progress

    async def send(
        self,
        client: httpx.AsyncClient,
        kind: str,
        method: str,
        url: str,
        *,
        created_status: int | None = 201,
        records: int = 1,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """The 2xx answer (tallied as stored), or None once the `records` failed (tallied too).

        `created_status` is the answer meaning "stored now"; any other 2xx, and a replay of an
        Idempotency-Key, means an earlier run stored it. None: the caller tallies the answer.
        """
        loop = asyncio.get_running_loop()
        status = "no answer"
        attempt = 0  # refusals in a row with no answer to any request of the loader between
        progress = self.answered
        while True:
            if (pause := self.resume_at - loop.time()) > 0:
                await asyncio.sleep(pause)
            try:
                async with self.gate:
                    response = await client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                status, wait = type(exc).__name__, retry_delay(None, attempt)
            else:
                if response.is_success:
                    self.answered += 1
                if response.is_success and created_status is None:
                    return response
                if response.is_success:
                    replayed = response.headers.get("idempotent-replayed") == "true"
                    fresh = response.status_code == created_status and not replayed
                    (self.tally.created if fresh else self.tally.existing)[kind] += 1
                    return response
                status = str(response.status_code)
                if response.status_code not in RETRY_STATUSES:
                    print(f"{method} {url}: {status} {response.text[:200]}", file=sys.stderr)
                    break
                wait = retry_delay(response.headers.get("retry-after"), attempt)
            # Other requests got through since this one's last refusal: the service is taking
            # records at the rate it allows, and when the pause ends this one competes with
            # every other waiting request for the few the limit lets through at once. Only
            # refusals with no progress at all count towards giving up.
            if self.answered != progress:
                attempt, progress = 0, self.answered
            attempt += 1
            if attempt == self.max_attempts:
                break
            self.tally.retried[status] += 1
            self.resume_at = max(self.resume_at, loop.time() + min(wait, self.max_wait))
        self.tally.failed[kind][status] += records
        return None


def idempotency_key(path: str, body: Mapping[str, Any]) -> str:
    """The same record gets the same key in every run."""
    content = path + "\n" + json.dumps(body, sort_keys=True, default=str)
    return "demo-" + hashlib.sha256(content.encode()).hexdigest()[:40]


async def load(
    clients: Mapping[str, httpx.AsyncClient],
    count: int,
    seed: int,
    sender: Sender,
    now: datetime | None = None,
) -> Tally:
    """Load the data set through `clients` (one per service, with base URL and token)."""
    tally = sender.tally
    # Pinned to the day, so a rerun on the same day sends byte-identical records.
    now = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    data = list(customers(count, seed, now))
    imported = await sender.send(
        clients["profiles"],
        "customers",
        "POST",
        "/customers/import",
        created_status=None,
        records=len(data),
        params={"allow_duplicates": "true"},
        content="\n".join(json.dumps(c.body) for c in data),
        headers={"content-type": "application/x-ndjson"},
    )
    if imported is None:
        return tally
    ids = {}
    for row in imported.json()["rows"]:
        if row["status"] == "error":
            tally.failed["customers"]["row error"] += 1
            continue
        (tally.created if row["status"] == "created" else tally.existing)["customers"] += 1
        ids[row["external_ref"]] = row["customer_id"]

    async def post(service: str, path: str, kind: str, body: dict[str, Any]) -> Any:
        headers = {} if kind == "purchases" else {"Idempotency-Key": idempotency_key(path, body)}
        return await sender.send(clients[service], kind, "POST", path, json=body, headers=headers)

    async def one(customer: Any) -> None:
        customer_id = ids.get(customer.external_ref)
        if customer_id is None:
            return
        for purchase in customer.purchases:
            await post(
                "interactions", "/purchases", "purchases", {**purchase, "customer_id": customer_id}
            )
        for interaction in customer.interactions:
            await post(
                "interactions",
                "/interactions",
                "interactions",
                {**interaction, "customer_id": customer_id},
            )
        for survey in customer.surveys:
            await post(
                "interactions", "/surveys", "surveys", {**survey, "customer_id": customer_id}
            )
        for complaint in customer.complaints:
            created = await post(
                "complaints", "/complaints", "complaints", {**complaint, "customer_id": customer_id}
            )
            # A replayed complaint was advanced by the run that created it.
            if created is not None and created.headers.get("idempotent-replayed") != "true":
                await advance_complaint(clients["complaints"], sender, created)

    await asyncio.gather(*(one(c) for c in data))
    return tally


async def advance_complaint(
    client: httpx.AsyncClient, sender: Sender, created: httpx.Response
) -> None:
    """Acknowledge most complaints and resolve some, so SLA figures have data."""
    complaint = created.json()
    path = f"/complaints/{complaint['id']}/transitions"
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
    for step in steps[: 1 + int(complaint["id"][-4:], 16) % 3]:
        r = await sender.send(
            client,
            "complaint steps",
            "POST",
            path,
            created_status=200,
            json=step,
            headers={"If-Match": etag or "*"},
        )
        if r is None:
            return
        etag = r.headers.get("etag")


async def run(args: argparse.Namespace) -> Tally:
    token = issue_token(ServiceSettings(), "admin", subject="demo-loader")
    auth = {"Authorization": f"Bearer {token}"}
    sender = Sender(Tally(), max_attempts=args.max_attempts, max_wait=args.max_wait)
    clients = {
        name: httpx.AsyncClient(base_url=url, headers=auth, timeout=60)
        for name, url in URLS.items()
    }
    try:
        return await load(clients, args.customers, args.seed, sender)
    finally:
        for client in clients.values():
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="make demo")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=8,
        help="per record: refusals (429/503) in a row while no other request got through",
    )
    parser.add_argument(
        "--max-wait", type=float, default=30.0, help="longest wait for one Retry-After, seconds"
    )
    args = parser.parse_args()
    tally = asyncio.run(run(args))
    print("stored in the services:")
    for line in tally.lines() or ["nothing"]:
        print(f"  {line}")
    print(f"see {URLS['analytics']}/docs (GET /tiers, /satisfaction, /complaints/stats)")
    if tally.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
