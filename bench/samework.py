"""Same-work baselines: the seven hot paths written as plainly as FastAPI and asyncpg allow.

Each endpoint does exactly the statements, checks and crypto of the product's path, on the
product's own databases and tables, with nothing else: the bearer check (a verified token is
remembered until it expires, as the product does), validation by the product's own request
model, the blind indexes and AES-GCM seals and opens of the same fields (the product's keyring),
the same SQL statements in the same transactions, a request id in every audit entry, and a JSON
answer of the same shape. What the product adds on top (its middleware, dependency injection,
request context, masking rules, metrics, the relay's pass in the serving process) is its
overhead, and `make bench` reports the product's rate as a ratio to this one.

The events both sides write travel the same way: after each write the baseline wakes the
product's relay (the `shared.wake` datagram, at most one every 5 ms), as the product's commits
wake it in-process. Before, the baseline's events waited for the relay's one-second poll, so
in the baseline's run the broker and the consumers took them in batches ten to twenty times
larger, at a fraction of the per-event cost they have in the product's run, and that CPU on
the shared machine counted against the product.

The statements per path (`python -m bench.trace` prints the product's, to compare):

- GET /customers/{id}: SELECT customer + insights; INSERT the read's audit entry (autocommit).
- GET /customers?industry&region&limit=50: SELECT a page of 51; INSERT 50 audit entries in one
  statement (autocommit).
- POST /customers: BEGIN; advisory locks on the blind indexes; one data-modifying CTE
  (external_ref and duplicate checks, INSERT customer, history, outbox, audit); COMMIT.
- PATCH /customers/{id}: in autocommit, SELECT; one CTE (UPDATE of the version read, history,
  outbox, audit); if the row moved in between, BEGIN; SELECT ... FOR UPDATE; the CTE; COMMIT.
- POST /purchases (in the reporting currency: no rate to look up): the product's
  `RECORD_PURCHASE` CTE (the customer's merge state, INSERT ... ON CONFLICT DO NOTHING, outbox,
  audit), in autocommit as the product runs it without an Idempotency-Key.
- POST /interactions: three AES-GCM seals; the product's `LOG_INTERACTION` CTE (the customer's
  state, INSERT interaction, upsert of the contact state, planned revisits closed, outbox,
  audit), in autocommit as the product runs it without an Idempotency-Key (refusing a contact
  that would close an open revisit, whose events would take a second statement; the bench's
  customers have none).
- POST /complaints: one SELECT (redirect, tier, erased, the desk configuration's version;
  policies, rules and holidays are read again only when it moved); one CTE (reference counter,
  INSERT case, transition, outbox rows complaint.received and case.received, audit), in
  autocommit as the product runs them without an Idempotency-Key or a team to route to. The
  first matching SLA policy and the deadlines on its calendar are computed in Python, as the
  product does; its statements are the product's (`services.complaints.repository`).

Run by `make bench` as `uvicorn bench.samework:app` against the databases of the running stack.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, NamedTuple

import asyncpg
import jwt
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse

from services.complaints import desk
from services.complaints import repository as cases_sql
from services.complaints.config import Settings as ComplaintsSettings
from services.complaints.desk import Policy
from services.complaints.schemas import ComplaintCreate
from services.complaints.sla import SlaClock
from services.interactions.repository import LOG_INTERACTION, RECORD_PURCHASE
from services.interactions.schemas import InteractionCreate, PurchaseCreate
from services.profiles.schemas import CustomerCreate, CustomerUpdate
from shared.app import settle_heap
from shared.auth import scopes_for
from shared.crypto import keyring
from shared.settings import ServiceSettings
from shared.wake import WakeSender

SETTINGS = ServiceSettings()
SECRET = SETTINGS.signing_secret
TOKENS: dict[str, tuple[str, str | None, frozenset[str], float]] = {}
POOLS: dict[str, asyncpg.Pool] = {}
# The product's relays, woken after each write as the product's own commits wake them (the
# datagram of `shared.wake`), so the events of both sides reach the broker and the consumers
# at the same pace; `make bench` names each service's run directory in BENCH_RELAY_RUN_DIRS.
WAKES: dict[str, WakeSender] = {}

CUSTOMER_SEALED = ("display_name", "legal_name", "email", "phone", "notes")
CUSTOMER_SEALED_JSON = ("addresses", "custom_attributes")
CUSTOMER_PII = CUSTOMER_SEALED + CUSTOMER_SEALED_JSON
CUSTOMER_COLUMNS = (
    "c.id, c.customer_number, c.kind, c.status, c.version, c.external_ref, c.display_name, "
    "c.legal_name, c.email, c.phone, c.addresses, c.notes, c.custom_attributes, "
    "c.company_name, c.industry, c.region, c.company_size, c.source_channel, c.owner_id, "
    "c.tags, c.language, c.preferred_channel, c.important_dates, c.merged_into_id, "
    "c.created_at, c.updated_at, c.archived_at, c.erased_at, i.tier, i.lifecycle_stage, "
    "i.churn_risk_score, i.churn_risk_level, i.churn_risk_reasons"
)
FROM_CUSTOMERS = "FROM customers c LEFT JOIN customer_insights i ON i.customer_id = c.id"
AUDIT_INSERT = (
    "INSERT INTO audit_log (actor, role, action, resource, resource_id, customer_id, purpose, "
    "request_id, fields) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)"
)


def dsn(service: str) -> str:
    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    return f"{base}/kehu_{service}"


async def _init(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=str, decoder=json.loads, schema="pg_catalog")


async def _keep(conn: asyncpg.Connection) -> None:
    """No reset query on release: every use is a whole statement or transaction."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> Any:
    for service in ("profiles", "interactions", "complaints"):
        POOLS[service] = await asyncpg.create_pool(
            dsn(service), min_size=16, max_size=16, init=_init, reset=_keep
        )
    for entry in filter(None, os.environ.get("BENCH_RELAY_RUN_DIRS", "").split(",")):
        service, _, run_dir = entry.partition("=")
        WAKES[service] = WakeSender(run_dir)
    settle_heap()  # the product's collector settings (`shared.app.settle_heap`), so they cancel
    yield
    for pool in POOLS.values():
        await pool.close()
    for sender in WAKES.values():
        sender.close()


# At most one datagram per service every 5 ms: a woken relay waits `outbox_debounce_s` (50 ms)
# before its pass anyway, and the product's own wake-ups (an event set in its process) cost
# nothing to receive, so a datagram per request would only charge the baseline's side.
WAKE_EVERY_S = 0.005
WOKEN_AT: dict[str, float] = {}


def wake(service: str) -> None:
    """After a commit that wrote outbox rows: wake the service's relay, as the product does."""
    now = time.monotonic()
    sender = WAKES.get(service)
    if sender is not None and now - WOKEN_AT.get(service, -WAKE_EVERY_S) >= WAKE_EVERY_S:
        WOKEN_AT[service] = now
        sender()


app = FastAPI(lifespan=lifespan)
Auth = Annotated[str | None, Header()]


def principal(authorization: str | None, scope: str) -> tuple[str, str | None, frozenset[str]]:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401)
    token = authorization[7:]
    known = TOKENS.get(token)
    if known is None or known[3] <= time.time():
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="kehu", issuer="kehu")
        except jwt.PyJWTError:
            raise HTTPException(401) from None
        known = (claims["sub"], claims.get("role"), scopes_for(claims), float(claims["exp"]))
        TOKENS[token] = known
    if scope not in known[2]:
        raise HTTPException(403)
    return known[0], known[1], known[2]


def plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime | Decimal):
        return str(value)
    return value


def open_customer(row: asyncpg.Record) -> dict[str, Any]:
    ring = keyring()
    out = {k: plain(v) for k, v in row.items()}
    for name in CUSTOMER_SEALED:
        if out[name] is not None:
            out[name] = ring.open(out[name], f"customers.{name}")
    for name in CUSTOMER_SEALED_JSON:
        value = out[name]
        out[name] = json.loads(ring.open(value, f"customers.{name}")) if value else None
    return out


def read_fields(customer: dict[str, Any]) -> list[str]:
    return sorted(f for f in CUSTOMER_PII if customer[f] not in (None, [], {}))


def customer_body(c: dict[str, Any]) -> dict[str, Any]:
    churn = None
    if c.pop("churn_risk_score") is not None:
        churn = {"score": 0, "level": c["churn_risk_level"], "reasons": c["churn_risk_reasons"]}
    insights = {"tier": c.pop("tier"), "lifecycle_stage": c.pop("lifecycle_stage")}
    c.pop("churn_risk_level")
    c.pop("churn_risk_reasons")
    return {**c, "insights": {**insights, "churn_risk": churn}}


# -- profiles ------------------------------------------------------------------------------------


@app.get("/customers/{customer_id}")
async def get_customer(
    customer_id: uuid.UUID,
    authorization: Auth = None,
    x_purpose: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    actor, role, scopes = principal(authorization, "customers:read")
    request_id = uuid.uuid4().hex
    async with POOLS["profiles"].acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT {CUSTOMER_COLUMNS} {FROM_CUSTOMERS} WHERE c.id = $1", customer_id
        )
        if row is None:
            raise HTTPException(404)
        customer = open_customer(row)
        if "pii:read" in scopes:
            await conn.execute(
                AUDIT_INSERT,
                actor,
                role,
                "read_pii",
                "customer",
                str(customer_id),
                str(customer_id),
                x_purpose,
                request_id,
                json.dumps(read_fields(customer)),
            )
    return JSONResponse(
        customer_body(customer),
        headers={"ETag": f'"{customer["version"]}"', "X-Request-ID": request_id},
    )


LIST_AUDIT = (
    "INSERT INTO audit_log (actor, role, action, resource, resource_id, customer_id, purpose, "
    "request_id, fields) SELECT $1, $2, 'read_pii', 'customer', x.id, x.id, $3, $4, x.fields "
    "FROM jsonb_to_recordset($5::jsonb) AS x(id text, fields jsonb)"
)


@app.get("/customers")
async def list_customers(
    industry: str,
    region: str,
    limit: int = 50,
    authorization: Auth = None,
    x_purpose: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    actor, role, scopes = principal(authorization, "customers:read")
    request_id = uuid.uuid4().hex
    async with POOLS["profiles"].acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {CUSTOMER_COLUMNS} {FROM_CUSTOMERS} WHERE c.status <> 'merged' "
            "AND c.industry = $1 AND c.region = $2 ORDER BY c.created_at DESC, c.id DESC LIMIT $3",
            industry,
            region,
            limit + 1,
        )
        items = [open_customer(r) for r in rows[:limit]]
        if "pii:read" in scopes:
            entries = [{"id": c["id"], "fields": read_fields(c)} for c in items]
            await conn.execute(LIST_AUDIT, actor, role, x_purpose, request_id, json.dumps(entries))
    cursor = None
    if len(rows) > limit:
        last = items[-1]
        position = {"s": "-created_at", "v": [last["created_at"], last["id"]]}
        cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode()
    body = {"items": [customer_body(c) for c in items], "next_cursor": cursor}
    return JSONResponse(body, headers={"X-Request-ID": request_id})


def dimensions(c: dict[str, Any]) -> dict[str, Any]:
    names = ("kind", "customer_number", "industry", "region", "company_size", "source_channel")
    names += ("owner_id", "language", "preferred_channel")
    out = {n: c.get(n) for n in names}
    out["tags"] = list(c.get("tags") or [])
    out["status"] = "active" if c.get("status", "active") == "active" else "archived"
    out["important_dates"] = c.get("important_dates") or []
    return out


def event(kind: str, customer_id: uuid.UUID, at: datetime, data: dict[str, Any]) -> list[Any]:
    event_id = uuid.uuid4()
    return [
        event_id,
        f"kehu.customer.{kind}.v1",
        "/kehu/profiles",
        str(customer_id),
        "kehu.customers",
        at,
        json.dumps({"customer_id": str(customer_id), "occurred_at": at.isoformat(), **data}),
    ]


def blind(value: str | None, purpose: str) -> str | None:
    return None if value is None else keyring().blind_index(value, purpose)


CREATE_SQL = """
WITH dup AS (
    SELECT id, customer_number, owner_id, e, p, n FROM (
        SELECT id, customer_number, owner_id, created_at, email_index = $11 AS e,
               phone_index = $12 AS p, name_index = $14 AS n
        FROM customers
        WHERE (email_index = $11 OR phone_index = $12 OR name_index = $14)
              AND status <> 'merged'
        OFFSET 0
    ) candidates
    ORDER BY created_at, id LIMIT 5
), ref AS (
    SELECT id, customer_number FROM customers
    WHERE $3::text IS NOT NULL AND external_ref = $3::text
), ins AS (
    INSERT INTO customers (id, kind, external_ref, display_name, legal_name, email, phone,
        addresses, notes, custom_attributes, email_index, phone_index, display_name_index,
        name_index, search_name, company_name, industry, region, company_size, source_channel,
        owner_id, tags, language, preferred_channel, important_dates, created_at, updated_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
        $20, $21, $22, $23, $24, $25::jsonb, $26, $26
    WHERE NOT EXISTS (SELECT 1 FROM ref) AND ($27 OR NOT EXISTS (SELECT 1 FROM dup))
    RETURNING id, customer_number, status, version
), hist AS (
    INSERT INTO customer_history (customer_id, entity, entity_id, action, actor, changed_at,
        changes)
    SELECT id, 'customer', id::text, 'created', $28, $26, $29 FROM ins
), ob AS (
    INSERT INTO outbox (event_id, type, source, subject, partition_key, topic, time, data)
    SELECT $30, $31, $32, $33, $33, $34, $26,
        jsonb_set($35::jsonb, '{dimensions,customer_number}', to_jsonb(ins.customer_number))
    FROM ins
), au AS (
    INSERT INTO audit_log (actor, role, action, resource, resource_id, customer_id, purpose,
        request_id, fields)
    SELECT $28, $36, 'create', 'customer', id::text, id::text, $37, $38, $39::jsonb FROM ins
)
SELECT 'created' AS found, id, customer_number, status, version, NULL::text AS owner_id,
    NULL::boolean AS e, NULL::boolean AS p, NULL::boolean AS n FROM ins
UNION ALL SELECT 'external_ref', id, customer_number, NULL, NULL, NULL, NULL, NULL, NULL FROM ref
UNION ALL SELECT 'duplicate', id, customer_number, NULL, NULL, owner_id, e, p, n FROM dup
"""


@app.post("/customers", status_code=201)
async def create_customer(
    data: CustomerCreate,
    authorization: Auth = None,
    x_purpose: Annotated[str | None, Header()] = None,
    allow_duplicate: bool = False,
) -> JSONResponse:
    actor, role, _ = principal(authorization, "customers:write")
    request_id = uuid.uuid4().hex
    ring = keyring()
    values = data.model_dump(mode="json")
    name = " ".join(data.display_name.split()).lower()
    company = " ".join((data.company_name or "").split()).lower()
    email_index = blind(data.email and data.email.lower(), "customers.email")
    phone_index = blind(data.phone, "customers.phone")
    name_index = (
        blind(f"organisation\0{name}", "customers.name")
        if data.kind == "organisation"
        else (blind(f"person\0{name}\0{company}", "customers.name") if company else None)
    )
    keys = sorted({k for k in (email_index, phone_index, name_index) if k})
    sealed = {
        n: None if values[n] is None else ring.seal(values[n], f"customers.{n}")
        for n in CUSTOMER_SEALED
    }
    for n in CUSTOMER_SEALED_JSON:
        sealed[n] = ring.seal(json.dumps(values[n]), f"customers.{n}")
    at = datetime.now(UTC)
    customer_id = uuid.uuid4()
    changes = {k: {"old": None, "new": v} for k, v in values.items() if v not in (None, [], {})}
    outbox = event("created", customer_id, at, {"dimensions": dimensions(values)})
    async with POOLS["profiles"].acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k",
            keys,
        )
        rows = await conn.fetch(
            CREATE_SQL,
            customer_id,
            data.kind,
            data.external_ref,
            sealed["display_name"],
            sealed["legal_name"],
            sealed["email"],
            sealed["phone"],
            sealed["addresses"],
            sealed["notes"],
            sealed["custom_attributes"],
            email_index,
            phone_index,
            blind(name, "customers.display_name"),
            name_index,
            data.display_name if data.kind == "organisation" else None,
            data.company_name,
            data.industry,
            data.region,
            data.company_size,
            data.source_channel,
            data.owner_id,
            values["tags"],
            data.language,
            data.preferred_channel,
            json.dumps(values["important_dates"]),
            at,
            allow_duplicate,
            actor,
            ring.seal(json.dumps(changes), "customer_history.changes"),
            *outbox[:4],
            outbox[4],
            outbox[6],
            role,
            x_purpose,
            request_id,
            json.dumps(sorted(data.model_fields_set)),
        )
    created = next((r for r in rows if r["found"] == "created"), None)
    if created is None:
        raise HTTPException(409)
    body = {
        **values,
        "id": str(customer_id),
        "customer_number": created["customer_number"],
        "status": created["status"],
        "version": created["version"],
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
        "insights": {"tier": None, "lifecycle_stage": None, "churn_risk": None},
    }
    headers = {
        "ETag": f'"{created["version"]}"',
        "Location": f"/customers/{customer_id}",
        "X-Request-ID": request_id,
    }
    wake("profiles")
    return JSONResponse(body, status_code=201, headers=headers)


class _Moved(Exception):
    """The row changed between the unlocked read and the version-guarded write."""


@app.patch("/customers/{customer_id}")
async def update_customer(
    customer_id: uuid.UUID,
    patch: CustomerUpdate,
    authorization: Auth = None,
    if_match: Annotated[str | None, Header()] = None,
    x_purpose: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    actor, role, _ = principal(authorization, "customers:write")
    request_id = uuid.uuid4().hex
    who = Who(actor, role, x_purpose, request_id)
    async with POOLS["profiles"].acquire() as conn:
        try:  # autocommit: the write applies only to the version read
            customer, changed = await _update(conn, False, customer_id, patch, if_match, who)
        except _Moved:  # it moved: again with the row locked
            async with conn.transaction():
                customer, changed = await _update(conn, True, customer_id, patch, if_match, who)
    headers = {"X-Request-ID": request_id}
    if changed:
        headers["ETag"] = f'"{customer["version"]}"'
        wake("profiles")
    return JSONResponse(customer_body(customer), headers=headers)


class Who(NamedTuple):
    actor: str
    role: str | None
    purpose: str | None
    request_id: str


async def _update(
    conn: asyncpg.Connection,
    locked: bool,
    customer_id: uuid.UUID,
    patch: CustomerUpdate,
    if_match: str | None,
    who: Who,
) -> tuple[dict[str, Any], bool]:
    ring = keyring()
    requested = patch.model_dump(mode="json", exclude_unset=True)
    lock = " FOR UPDATE OF c" if locked else ""
    row = await conn.fetchrow(
        f"SELECT {CUSTOMER_COLUMNS} {FROM_CUSTOMERS} WHERE c.id = $1{lock}", customer_id
    )
    if row is None:
        raise HTTPException(404)
    customer = open_customer(row)
    if if_match is None:
        raise HTTPException(428)
    if if_match != "*" and if_match != f'"{customer["version"]}"':
        raise HTTPException(412)
    if customer["status"] == "merged" or customer["erased_at"] is not None:
        raise HTTPException(409)
    changes = {k: {"old": customer[k], "new": v} for k, v in requested.items() if customer[k] != v}
    if not changes:
        return customer, False
    at = datetime.now(UTC)
    read_version = customer["version"]
    customer.update(requested)
    assignments, params = [], [customer_id, at]
    for name in changes:
        value = requested[name]
        if name in CUSTOMER_SEALED and value is not None:
            value = ring.seal(value, f"customers.{name}")
        params.append(value)
        assignments.append(f"{name} = ${len(params)}")
    guard = ""
    if not locked:
        params.append(read_version)
        guard = f" AND version = ${len(params)}"
    outbox = event(
        "updated",
        customer_id,
        at,
        {"changed_fields": sorted(changes), "dimensions": dimensions(customer)},
    )
    params += [
        who.actor,
        ring.seal(json.dumps(changes), "customer_history.changes"),
        *outbox,
        who.role,
        who.purpose,
        who.request_id,
        json.dumps(sorted(patch.model_fields_set)),
    ]
    n = len(params)
    version = await conn.fetchval(
        f"""
        WITH up AS (
            UPDATE customers SET {", ".join(assignments)}, version = version + 1,
                updated_at = $2
            WHERE id = $1{guard} RETURNING id, version
        ), hist AS (
            INSERT INTO customer_history (customer_id, entity, entity_id, action, actor,
                changed_at, changes)
            SELECT id, 'customer', id::text, 'updated', ${n - 12}, $2, ${n - 11} FROM up
        ), ob AS (
            INSERT INTO outbox (event_id, type, source, subject, partition_key, topic,
                time, data)
            SELECT ${n - 10}, ${n - 9}, ${n - 8}, ${n - 7}, ${n - 7}, ${n - 6}, ${n - 5},
                ${n - 4}::jsonb FROM up
        ), au AS (
            INSERT INTO audit_log (actor, role, action, resource, resource_id, customer_id,
                purpose, request_id, fields)
            SELECT ${n - 12}, ${n - 3}, 'update', 'customer', id::text, id::text,
                ${n - 2}, ${n - 1}, ${n}::jsonb FROM up
        )
        SELECT version FROM up
        """,
        *params,
    )
    if version is None:
        raise _Moved()
    customer["version"] = version
    customer["updated_at"] = at.isoformat()
    return customer, True


# -- interactions and complaints -------------------------------------------------------------------


def outbox_row(source: str, kind: str, topic: str, customer_id: uuid.UUID, data: dict[str, Any]):
    at = datetime.now(UTC)
    body = {"customer_id": str(customer_id), "occurred_at": at.isoformat(), **data}
    return (
        uuid.uuid4(),
        kind,
        source,
        str(customer_id),
        str(customer_id),
        topic,
        at,
        json.dumps(body),
    )


OUTBOX_INSERT = (
    "INSERT INTO outbox (event_id, type, source, subject, partition_key, topic, time, data) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)"
)


def outbox_json(source: str, kind: str, topic: str, customer_id: uuid.UUID, data: dict[str, Any]):
    """One outbox row as the JSON array the product's CTEs read (`jsonb_to_recordset`)."""
    at = datetime.now(UTC)
    body = {"customer_id": str(customer_id), **data}
    row = {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "source": source,
        "subject": str(customer_id),
        "partition_key": str(customer_id),
        "topic": topic,
        "time": at.isoformat(),
        "data": body,
    }
    return json.dumps([row])


def audit_entry_json(actor, role, resource, resource_id, customer_id, purpose, request_id, fields):
    return json.dumps(
        [
            {
                "actor": actor,
                "role": role,
                "action": "create",
                "resource": resource,
                "resource_id": str(resource_id),
                "customer_id": str(customer_id),
                "purpose": purpose,
                "request_id": request_id,
                "fields": sorted(fields),
            }
        ]
    )


@app.post("/purchases", status_code=201)
async def record_purchase(
    data: PurchaseCreate,
    authorization: Auth = None,
    x_purpose: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    actor, role, _ = principal(authorization, "purchases:write")
    request_id = uuid.uuid4().hex
    cent = Decimal("0.0001")
    now = datetime.now(UTC)
    purchase_id = uuid.uuid4()
    amount, cost = data.amount.quantize(cent), data.cost.quantize(cent)
    margin = (data.amount - data.cost).quantize(cent)
    if data.currency != SETTINGS.reporting_currency:
        raise HTTPException(422)  # the bench posts purchases in the reporting currency
    rate = Decimal(1).quantize(Decimal("0.00000001"))
    items = [i.model_dump(mode="json") for i in data.items]
    outbox = outbox_json(
        "/kehu/interactions",
        "kehu.purchase.recorded.v1",
        "kehu.interactions",
        data.customer_id,
        {
            "occurred_at": data.occurred_at.isoformat(),
            "purchase_id": str(purchase_id),
            "external_ref": data.external_ref,
            "amount": str(amount),
            "cost": str(cost),
            "margin": str(margin),
            "currency": data.currency,
            "status": data.status,
            "reporting_currency": data.currency,
            "fx_rate": str(rate),
            "reporting_amount": str(amount),
            "reporting_cost": str(cost),
            "reporting_margin": str(margin),
        },
    )
    fields = [k for k, v in data if v is not None]
    audit = audit_entry_json(
        actor, role, "purchase", purchase_id, data.customer_id, x_purpose, request_id, fields
    )
    async with POOLS["interactions"].acquire() as conn:  # autocommit: the write is one statement
        row = await conn.fetchrow(
            RECORD_PURCHASE,
            purchase_id,
            data.customer_id,
            data.external_ref,
            data.occurred_at,
            amount,
            cost,
            margin,
            data.currency,
            data.status,
            json.dumps(items),
            data.currency,
            rate,
            amount,
            cost,
            margin,
            False,
            now,
            outbox,
            audit,
        )
        if not row["created"]:
            raise HTTPException(409)
    body = {
        **data.model_dump(mode="json"),
        "id": str(purchase_id),
        "margin": str(margin),
        "refunded_amount": "0.0000",
        "refunded_margin": "0.0000",
        "refundable_amount": str(amount),
        "reporting_currency": data.currency,
        "fx_rate": str(rate),
        "reporting_amount": str(amount),
        "reporting_cost": str(cost),
        "reporting_margin": str(margin),
        "version": 1,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
    }
    headers = {"ETag": '"1"', "Location": f"/purchases/{purchase_id}", "X-Request-ID": request_id}
    wake("interactions")
    return JSONResponse(body, status_code=201, headers=headers)


@app.post("/interactions", status_code=201)
async def log_interaction(
    data: InteractionCreate,
    authorization: Auth = None,
    x_purpose: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    actor, role, _ = principal(authorization, "interactions:write")
    request_id = uuid.uuid4().hex
    ring = keyring()
    now = datetime.now(UTC)
    interaction_id = uuid.uuid4()
    values = data.model_dump(mode="json")
    outbox = outbox_json(
        "/kehu/interactions",
        "kehu.interaction.logged.v1",
        "kehu.interactions",
        data.customer_id,
        {
            "occurred_at": data.occurred_at.isoformat(),
            "interaction_id": str(interaction_id),
            "channel": data.channel,
            "direction": data.direction,
            "outcome": data.outcome,
            "agent_id": data.agent_id,
            "duration_seconds": data.duration_seconds,
        },
    )
    fields = [k for k, v in values.items() if v is not None]
    audit = audit_entry_json(
        actor, role, "interaction", interaction_id, data.customer_id, x_purpose, request_id, fields
    )
    async with POOLS["interactions"].acquire() as conn:  # autocommit: the write is one statement
        rows = await conn.fetch(
            LOG_INTERACTION,
            interaction_id,
            data.customer_id,
            ring.seal(data.contact_person, "interactions.contact_person")
            if data.contact_person
            else None,
            data.channel,
            data.direction,
            data.occurred_at,
            data.duration_seconds,
            ring.seal(data.subject, "interactions.subject") if data.subject else None,
            ring.seal(data.summary, "interactions.summary") if data.summary else None,
            data.outcome,
            data.agent_id,
            data.need_id,
            data.purchase_id,
            data.complaint_id,
            now,
            data.outcome != "no_answer",
            False,
            data.occurred_at + timedelta(days=90),
            14,
            30,
            90,
            90,
            outbox,
            audit,
            True,  # alone: the whole write
        )
        if not rows:
            raise HTTPException(409)
    body = {
        **values,
        "id": str(interaction_id),
        "customer_id": str(data.customer_id),
        "version": 1,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
    }
    headers = {"ETag": '"1"', "Location": f"/interactions/{interaction_id}"}
    wake("interactions")
    return JSONResponse(body, status_code=201, headers={**headers, "X-Request-ID": request_id})


COMPLAINTS = ComplaintsSettings()
DEFAULT_POLICIES = desk.default_policies(COMPLAINTS)  # the settings' matrix, after the list

CONFIG: dict[str, Any] = {"version": None}  # the desk's configuration, as the product caches it


def desk_config(row: asyncpg.Record) -> None:
    policies = [Policy(**{**p, "pause_states": tuple(p["pause_states"])}) for p in row["policies"]]
    CONFIG.update(
        version=row["version"],
        policies=[*policies, *DEFAULT_POLICIES],
        rules=[desk.Rule(**r) for r in row["rules"]],
        holidays=frozenset(row["holidays"]),
    )


@app.post("/complaints", status_code=201)
async def create_complaint(
    body: ComplaintCreate,
    authorization: Auth = None,
    x_purpose: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """The product's intake of a complaint-type case: the facts statement (redirect, tier,
    erasure, the configuration's version; the policies, rules and holidays read again only when
    it moved), the first matching SLA policy, deadlines on its calendar, the routing rules, then
    one statement numbering the reference and writing the case, its transition,
    `complaint.received` and `case.received`, and the audit entry."""
    actor, role, _ = principal(authorization, "complaints:write")
    request_id = uuid.uuid4().hex
    ring = keyring()
    now = datetime.now(UTC)
    complaint_id = uuid.uuid4()
    person = body.complainant

    def seal(value: str | None, context: str) -> str | None:
        return None if value is None else ring.seal(value, context)

    async with POOLS["complaints"].acquire() as conn:  # autocommit: the write is one statement
        facts_row = await conn.fetchrow(cases_sql.INTAKE_FACTS, body.customer_id)
        if facts_row["config_version"] != CONFIG["version"]:
            desk_config(await conn.fetchrow(cases_sql.DESK_CONFIG))
        customer_id = facts_row["customer_id"]
        tier = facts_row["tier"] or COMPLAINTS.default_tier
        erased = facts_row["erased"]
        facts = {
            "type": "complaint",
            "subtype": None,
            "severity": body.severity,
            "tier": tier,
            "channel": body.channel,
            "category": body.category,
        }
        policy = desk.first_match(CONFIG["policies"], facts)
        clock = SlaClock(COMPLAINTS, policy.calendar, CONFIG["holidays"])
        ratio = COMPLAINTS.sla_warning_ratio
        first_due = clock.add(now, policy.first_response_s)
        first_warn = clock.add(now, policy.first_response_s * ratio)
        resolution_due = clock.add(now, policy.resolution_s)
        resolution_warn = clock.add(now, policy.resolution_s * ratio)
        rule = None if body.assignee or body.team else desk.route(CONFIG["rules"], facts)
        team = body.team or (rule.team if rule else None)  # the bench sends neither
        contact = (None, None, None) if erased else (person.name, person.email, person.phone)
        texts = (None, None) if erased else (body.subject, body.description)
        columns = {
            "id": complaint_id,
            "type": "complaint",
            "customer_id": customer_id,
            "channel": body.channel,
            "category": body.category,
            "severity": body.severity,
            "status": "received",
            "tier": tier,
            "complainant_name": seal(contact[0], "complaints.complainant_name"),
            "complainant_email": seal(contact[1], "complaints.complainant_email"),
            "complainant_phone": seal(contact[2], "complaints.complainant_phone"),
            "subject": seal(texts[0], "complaints.subject"),
            "description": seal(texts[1], "complaints.description"),
            "related_purchase_id": body.related_purchase_id,
            "related_interaction_id": body.related_interaction_id,
            "assignee": body.assignee,
            "team": team,
            "escalation_level": 0,
            "critical_escalated": False,
            "received_at": now,
            "paused_seconds": 0.0,
            "sla_policy": policy.name,
            "sla_calendar": json.dumps(policy.calendar) if policy.calendar else None,
            "pause_states": list(policy.pause_states),
            "first_response_target_s": policy.first_response_s,
            "resolution_target_s": policy.resolution_s,
            "first_response_due_at": first_due,
            "first_response_warn_at": first_warn,
            "resolution_due_at": resolution_due,
            "resolution_warn_at": resolution_warn,
            "first_response_warned": False,
            "first_response_breached": False,
            "resolution_warned": False,
            "resolution_breached": False,
            "sla_status": "on_track",
            "next_sla_check_at": first_warn,
            "next_due_at": first_due,
            "reopen_count": 0,
            "erased_at": now if erased else None,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        received = outbox_row(
            "/kehu/complaints",
            "kehu.complaint.received.v1",
            "kehu.complaints",
            customer_id,
            {
                "complaint_id": str(complaint_id),
                "channel": body.channel,
                "category": body.category,
                "severity": body.severity,
                "first_response_due_at": first_due.isoformat(),
                "resolution_due_at": resolution_due.isoformat(),
            },
        )
        case = outbox_row(
            "/kehu/complaints",
            "kehu.case.received.v1",
            "kehu.complaints",
            customer_id,
            {
                "case_id": str(complaint_id),
                "type": "complaint",
                "subtype": None,
                "reference": "",  # numbered by the statement
                "channel": body.channel,
                "category": body.category,
                "severity": body.severity,
                "sla_policy": policy.name,
                "first_response_due_at": first_due.isoformat(),
                "resolution_due_at": resolution_due.isoformat(),
                "team": team,
                "assignee": body.assignee,
            },
        )
        names = ("event_id", "type", "source", "subject", "partition_key", "topic", "time", "data")
        events = [
            {**dict(zip(names, row, strict=True)), "data": json.loads(row[-1])}
            for row in (received, case)
        ]
        audit = {
            "actor": actor,
            "role": role,
            "action": "create",
            "resource": "complaint",
            "resource_id": str(complaint_id),
            "customer_id": str(customer_id),
            "purpose": x_purpose,
            "request_id": request_id,
            "fields": sorted(body.model_dump(exclude_none=True)),
        }
        await conn.fetchval(
            cases_sql.REGISTER_CASE,
            *(columns.get(name) for name in cases_sql.CASE_COLUMNS),
            actor,
            now,
            json.dumps(events, default=str),
            json.dumps([audit]),
            "CP",
            now.year,
        )
    sla = {
        "status": "on_track",
        "active_target": "first_response",
        "remaining_seconds": int(clock.elapsed(now, first_due)),
        "paused": False,
        "paused_seconds": 0,
        "first_response_target_s": policy.first_response_s,
        "resolution_target_s": policy.resolution_s,
        "first_response_due_at": first_due.isoformat(),
        "resolution_due_at": resolution_due.isoformat(),
        "first_response_breached": False,
        "resolution_breached": False,
    }
    reply = {
        **body.model_dump(mode="json", exclude={"complainant"}),
        "complainant": None if erased else person.model_dump(mode="json"),
        "id": str(complaint_id),
        "customer_id": str(customer_id),
        "status": "received",
        "tier": tier,
        "team": team,
        "escalation_level": 0,
        "received_at": now.isoformat(),
        "sla": sla,
        "reopen_count": 0,
        "version": 1,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "allowed_transitions": ["acknowledged"],
    }
    headers = {"ETag": '"1"', "Location": f"/complaints/{complaint_id}"}
    wake("complaints")
    return JSONResponse(reply, status_code=201, headers={**headers, "X-Request-ID": request_id})
