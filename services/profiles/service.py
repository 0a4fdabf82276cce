"""Business rules of the archive: each change updates state, history and the outbox together."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from services.profiles import protection
from services.profiles import repository as repo
from services.profiles.errors import (
    CustomerNotActive,
    CustomerNotFound,
    DuplicateCustomer,
    ImportTooLarge,
    InvalidMerge,
    NeedTransitionInvalid,
    UnsupportedImportFormat,
)
from services.profiles.models import (
    ConsentRecord,
    Contact,
    Customer,
    CustomerInsights,
    HistoryEntry,
    Need,
    idempotency_keys,
    table_of,
)
from services.profiles.schemas import (
    ChurnRisk,
    ConsentChange,
    ContactCreate,
    ContactUpdate,
    CustomerCreate,
    CustomerRead,
    CustomerUpdate,
    ImportResult,
    ImportRowResult,
    Insights,
    MergeRequest,
    MergeResult,
    NeedCreate,
    NeedUpdate,
)
from shared.audit import AUDIT_FROM_JSON, audit_json
from shared.consumer import in_steps
from shared.context import RequestContext
from shared.contracts.customers import (
    ConsentChanged,
    CustomerArchived,
    CustomerCreated,
    CustomerDimensions,
    CustomerErased,
    CustomerInsightValues,
    CustomerMerged,
    CustomerUpdated,
    NeedRecorded,
    NeedUpdated,
)
from shared.crypto import keyring
from shared.db import json_loads
from shared.http import check_if_match
from shared.problems import Conflict, Forbidden, InvalidJson, Unprocessable, loads_json

# Every customer field a caller can set, in a stable order (history, merge, events).
CUSTOMER_FIELDS = (
    "kind",
    "display_name",
    "legal_name",
    "email",
    "phone",
    "addresses",
    "company_name",
    "industry",
    "region",
    "company_size",
    "source_channel",
    "owner_id",
    "tags",
    "language",
    "preferred_channel",
    "important_dates",
    "notes",
    "custom_attributes",
    "external_ref",
)
MERGEABLE_FIELDS = tuple(f for f in CUSTOMER_FIELDS if f != "kind")
ERASED = "[erased]"
NEED_TRANSITIONS = {
    "open": {"in_progress", "met", "dropped"},
    "in_progress": {"open", "met", "dropped"},
    "met": {"open"},
    "dropped": {"open"},
}
PII_BY_ENTITY = {
    "customer": set(Customer.PII_COLUMNS),
    "contact": set(Contact.PII_COLUMNS),
    "need": set(Need.PII_COLUMNS),
}
# Collections a PATCH may set to null, meaning empty (the archive never stores them as null).
EMPTY_COLLECTIONS: dict[str, Callable[[], Any]] = {
    "addresses": list,
    "tags": list,
    "important_dates": list,
    "custom_attributes": dict,
}


# -- ownership -----------------------------------------------------------------------------------


def owner_limit(ctx: RequestContext) -> str | None:
    """The owner an agent is limited to (`agents_own_customers_only`), or None: every customer.

    A limited agent sees and changes only customers whose `owner_id` is its token subject;
    the others are 404, lists are filtered, and a 409 does not name them."""
    settings: Any = ctx.settings
    if ctx.principal.role == "agent" and settings.agents_own_customers_only:
        return ctx.principal.subject
    return None


async def guard(ctx: RequestContext, *customer_ids: uuid.UUID) -> None:
    """404 for an agent limited to its own customers when it does not own one of these."""
    owner = owner_limit(ctx)
    if owner is None:
        return
    owners = await repo.owners_of(ctx.session, customer_ids)
    for cid in customer_ids:
        if owners.get(cid) != owner:
            raise CustomerNotFound(f"Customer {cid} does not exist", customer_id=str(cid))


def owned_row(row: dict[str, Any] | str, owner: str) -> dict[str, Any] | str:
    """An agent limited to its own customers imports only customers it owns."""
    if isinstance(row, str) or row.get("owner_id") in (None, "", owner):
        return row if isinstance(row, str) else {**row, "owner_id": owner}
    return "agents may import only customers they own (owner_id must be your subject)"


# -- mapping -----------------------------------------------------------------------------------


def dimensions(c: Customer | dict[str, Any]) -> CustomerDimensions:
    get = c.get if isinstance(c, dict) else lambda name: getattr(c, name)
    return CustomerDimensions(
        kind=get("kind"),
        customer_number=get("customer_number"),
        industry=get("industry"),
        region=get("region"),
        company_size=get("company_size"),
        source_channel=get("source_channel"),
        owner_id=get("owner_id"),
        tags=list(get("tags") or []),
        language=get("language"),
        preferred_channel=get("preferred_channel"),
        status="active" if get("status") == "active" else "archived",
        important_dates=get("important_dates") or [],
    )


def insights_of(row: CustomerInsights | None) -> Insights:
    if row is None:
        return Insights()
    churn = None
    if row.churn_risk_score is not None and row.churn_risk_level is not None:
        churn = ChurnRisk(
            score=row.churn_risk_score,
            level=row.churn_risk_level,
            reasons=row.churn_risk_reasons or [],
        )
    return Insights(
        tier=row.tier,
        lifecycle_stage=row.lifecycle_stage,
        churn_risk=churn,
    )


def customer_values(c: Customer) -> dict[str, Any]:
    return {col.key: getattr(c, col.key) for col in Customer.__table__.columns}


def to_read(c: Customer | dict[str, Any], insights: CustomerInsights | None) -> CustomerRead:
    values = c if isinstance(c, dict) else customer_values(c)
    return CustomerRead.model_validate({**values, "insights": insights_of(insights)})


# The sealed columns of a customer (`models.Customer`), each bound to its column's context.
SEALED_TEXT = ("display_name", "legal_name", "email", "phone", "notes")
SEALED_JSON: dict[str, Callable[[], Any]] = {"addresses": list, "custom_attributes": dict}


def seal_column(name: str, value: Any) -> str | None:
    """A customer column's value as stored (as `EncryptedText` / `EncryptedJSON` store it)."""
    if value is None:
        return None
    text = json.dumps(value, default=str) if name in SEALED_JSON else value
    return keyring().seal(text, f"customers.{name}")


def open_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `repository.CUSTOMER_ROW` row with its sealed columns opened."""
    ring = keyring()
    values = dict(row)
    for name in SEALED_TEXT:
        if values[name] is not None:
            values[name] = ring.open(values[name], f"customers.{name}")
    for name, empty in SEALED_JSON.items():
        sealed = values[name]
        values[name] = (
            empty() if sealed is None else json_loads(ring.open(sealed, f"customers.{name}"))
        )
    return values


def read_of(values: Mapping[str, Any]) -> CustomerRead:
    """The read model of an opened customer row with its insights columns: one validation."""
    score, level = values.get("churn_risk_score"), values.get("churn_risk_level")
    insights = {
        "tier": values.get("tier"),
        "lifecycle_stage": values.get("lifecycle_stage"),
        "churn_risk": (
            {"score": score, "level": level, "reasons": values.get("churn_risk_reasons") or []}
            if score is not None and level is not None
            else None
        ),
    }
    return CustomerRead.model_validate({**values, "insights": insights})


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {old, new}} of the fields whose JSON value differs."""
    changes = {}
    for name, value in new.items():
        before, after = jsonable(old.get(name)), jsonable(value)
        if before != after:
            changes[name] = {"old": before, "new": after}
    return changes


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(json.dumps(value, default=str))


def history_row(
    customer_id: uuid.UUID,
    entity: str,
    entity_id: uuid.UUID,
    action: str,
    actor: str,
    at: datetime,
    changes: dict[str, Any],
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "entity": entity,
        "entity_id": str(entity_id),
        "action": action,
        "actor": actor,
        "changed_at": at,
        "changes": changes,
    }


async def record_history(ctx: RequestContext, *rows: dict[str, Any]) -> None:
    if rows:
        await ctx.session.execute(sa.insert(table_of(HistoryEntry)), list(rows))


# -- customers ---------------------------------------------------------------------------------


async def load(session: AsyncSession, customer_id: uuid.UUID, for_update: bool = False) -> Customer:
    customer = await repo.get_customer(session, customer_id, for_update=for_update)
    if customer is None:
        raise CustomerNotFound(
            f"Customer {customer_id} does not exist", customer_id=str(customer_id)
        )
    return customer


def ensure_changeable(customer: Customer) -> None:
    if customer.status == "merged":
        raise CustomerNotActive(
            f"Customer {customer.id} was merged into {customer.merged_into_id}; change that one",
            merged_into_id=str(customer.merged_into_id),
        )
    if customer.erased_at is not None:
        raise CustomerNotActive(f"Customer {customer.id} was erased and cannot change")


async def read_customer(ctx: RequestContext, customer_id: uuid.UUID) -> CustomerRead:
    """One customer; the read and its audit entry are two autocommitted statements."""
    conn = await ctx.db(transaction=False)
    row = await repo.customer_row(conn, customer_id)
    owner = owner_limit(ctx)
    if row is None or (owner is not None and row["owner_id"] != owner):
        raise CustomerNotFound(
            f"Customer {customer_id} does not exist", customer_id=str(customer_id)
        )
    read = read_of(open_row(row))
    await ctx.audit_reads([("customer", read, customer_id)])
    return read


async def read_changed(ctx: RequestContext, customer: Customer) -> CustomerRead:
    """The customer as a write left it, with its insights."""
    insights = await repo.get_insights(ctx.session, [customer.id])
    return to_read(customer, insights.get(customer.id))


async def list_customers(
    ctx: RequestContext,
    filters: repo.CustomerFilter,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[CustomerRead], str | None]:
    """A page of customers; a limited agent sees only its own (another owner's: nothing)."""
    filters.q_personal = ctx.can_read_pii
    owner = owner_limit(ctx)
    if owner is not None:
        if filters.owner_id not in (None, owner):
            return [], None
        filters.owner_id = owner
    conn = await ctx.db(transaction=False)  # a read: the page and its audit entries autocommit
    rows, next_cursor = await repo.list_customer_rows(conn, filters, sort, cursor, limit)
    opened = [open_row(row) for row in rows]
    await ctx.audit_reads([("customer", values, values["id"]) for values in opened])
    return [read_of(values) for values in opened], next_cursor


async def history(
    ctx: RequestContext,
    customer_id: uuid.UUID,
    entity: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[HistoryEntry], str | None]:
    await guard(ctx, customer_id)
    await load(ctx.session, customer_id)
    entries, next_cursor = await repo.history_page(ctx.session, customer_id, entity, cursor, limit)
    await ctx.audit_reads([("history", e, customer_id) for e in entries])
    return entries, next_cursor


def identity_keys(
    kind: str, name: str | None, company: str | None, email: str | None, phone: str | None
) -> list[str]:
    """Lock keys of the duplicate check: the blind indexes, so no plaintext reaches the DB."""
    keys = [
        protection.email_index(email),
        protection.phone_index(phone),
        protection.duplicate_name_index(kind, name, company),
    ]
    return [k for k in keys if k]


def reject_duplicates(
    matches: list[tuple[Customer, list[str]]],
    owner_scope: str | None = None,
) -> None:
    """409 naming the first look-alike (and every candidate), if there is one. A caller limited
    to its own customers learns that a look-alike exists, but not which one unless it owns it."""
    if not matches:
        return

    def visible(c: Customer) -> bool:
        return owner_scope is None or c.owner_id == owner_scope

    first, matched_on = matches[0]
    name = first.customer_number if visible(first) else "Another customer (not yours)"
    raise DuplicateCustomer(
        f"{'Customer ' if visible(first) else ''}{name} looks like the same customer "
        f"(same {', '.join(matched_on)}); send allow_duplicate=true to go ahead anyway",
        existing_customer_id=str(first.id) if visible(first) else None,
        existing_customer_number=first.customer_number if visible(first) else None,
        matched_on=matched_on,
        candidates=[
            {"customer_id": str(c.id), "customer_number": c.customer_number, "matched_on": m}
            if visible(c)
            else {"customer_id": None, "customer_number": None, "matched_on": m}
            for c, m in matches
        ],
    )


async def create_customer(
    ctx: RequestContext, data: CustomerCreate, allow_duplicate: bool
) -> CustomerRead:
    """A new customer: the identity locks, then one statement that checks external_ref and
    look-alikes and only then inserts the customer, its history, its event and its audit."""
    owner = owner_limit(ctx)
    if owner is not None:
        if data.owner_id not in (None, owner):
            raise Forbidden("Agents may create only customers they own (owner_id)")
        data = data.model_copy(update={"owner_id": owner})
    values = data.model_dump(mode="json")
    # Without an Idempotency-Key (whose claim commits with the customer) the locks and the
    # statement are a transaction of their own on the request's connection: no session.
    keyed = ctx.in_transaction()
    conn = await ctx.db(transaction=keyed)
    async with contextlib.nullcontext() if keyed else conn.transaction():
        await repo.lock_identity_keys_on(
            conn,
            identity_keys(data.kind, data.display_name, data.company_name, data.email, data.phone),
        )
        at = ctx.now()
        customer_id = uuid.uuid4()
        derived = protection.derived(values)
        created_values = {k: v for k, v in values.items() if v not in (None, [], {})}
        history = keyring().seal(
            json.dumps(diff({}, created_values), default=str), "customer_history.changes"
        )
        event = CustomerCreated(
            customer_id=customer_id,
            occurred_at=at,
            # The customer number is assigned by the statement.
            dimensions=dimensions({**values, "customer_number": "", "status": "active"}),
        )
        audit = ctx.change_entries(
            "create", "customer", customer_id, customer_id, data.model_fields_set
        )
        rows = await repo.create_customer_row(
            conn,
            customer_id,
            data.kind,
            data.external_ref,
            *(seal_column(n, values[n]) for n in ("display_name", "legal_name", "email", "phone")),
            seal_column("addresses", values["addresses"]),
            seal_column("notes", values["notes"]),
            seal_column("custom_attributes", values["custom_attributes"]),
            derived["email_index"],
            derived["phone_index"],
            derived["display_name_index"],
            derived["name_index"],
            derived["search_name"],
            *(values[n] for n in ("company_name", "industry", "region", "company_size")),
            *(values[n] for n in ("source_channel", "owner_id", "tags", "language")),
            values["preferred_channel"],
            json.dumps(values["important_dates"]),
            at,
            allow_duplicate,
            ctx.actor,
            history,
            json.dumps([ctx.outbox.row(event)], default=str),
            audit_json(audit),
        )
    found = {row["found"]: row for row in rows}
    if "external_ref" in found:
        existing = found["external_ref"]
        raise Conflict(
            f"external_ref {data.external_ref!r} is already customer {existing['id']}",
            existing_customer_id=str(existing["id"]),
            existing_customer_number=existing["customer_number"],
        )
    if "created" not in found:
        matches = [
            (
                SimpleNamespace(
                    id=r["id"], customer_number=r["customer_number"], owner_id=r["owner_id"]
                ),
                [
                    name
                    for name, hit in (
                        ("email", r["e"]),
                        ("phone", r["p"]),
                        ("name_and_company", r["n"]),
                    )
                    if hit
                ],
            )
            for r in rows
            if r["found"] == "duplicate"
        ]
        reject_duplicates(matches, owner)  # type: ignore[arg-type]
    ctx.wake_relay(at_commit=keyed)  # else committed by its own transaction
    created = found["created"]
    return read_of(
        {
            **values,
            "id": customer_id,
            "customer_number": created["customer_number"],
            "status": created["status"],
            "version": created["version"],
            "created_at": at,
            "updated_at": at,
            "archived_at": None,
            "erased_at": None,
            "merged_into_id": None,
        }
    )


# Fields whose change is checked against other customers (taken identity keys, another
# customer's external_ref): an update that sends one locks and checks in a transaction.
CHECKED_FIELDS = frozenset({"email", "phone", "external_ref"})


class _Moved(Exception):
    """The row changed between the optimistic read and the write: nothing was written."""


async def update_customer(
    ctx: RequestContext,
    customer_id: uuid.UUID,
    patch: CustomerUpdate,
    if_match: str | None,
    allow_duplicate: bool = False,
) -> CustomerRead:
    """Change the fields sent: the row is read, then one statement writes the changed columns,
    the version, the history entry, the events and the audit entry.

    Without an Idempotency-Key (whose claim commits with the change) and without a field
    checked against other customers, the read is not locked and the write, atomic by itself,
    applies only to the version read (two round trips in autocommit, the row locked only
    for the write's own statement). If the row moved in between, nothing was written and the
    update runs again with the row locked: a specific If-Match then answers 412 as it would
    have, `*` applies the change to the current row."""
    in_request = ctx.in_transaction() or bool(patch.model_fields_set & CHECKED_FIELDS)
    if in_request:
        read = await _update_customer(
            ctx, await ctx.db(), customer_id, patch, if_match, True, allow_duplicate
        )
    else:
        conn = await ctx.db(transaction=False)
        try:
            read = await _update_customer(ctx, conn, customer_id, patch, if_match, False)
        except _Moved:
            async with conn.transaction():
                read = await _update_customer(ctx, conn, customer_id, patch, if_match, True)
    ctx.wake_relay(at_commit=in_request)  # else committed by the statement or its transaction
    return read


async def _update_customer(
    ctx: RequestContext,
    conn: asyncpg.Connection,
    customer_id: uuid.UUID,
    patch: CustomerUpdate,
    if_match: str | None,
    locked: bool,
    allow_duplicate: bool = False,
) -> CustomerRead:
    """`update_customer` on `conn`: with `locked`, the row is locked as it is read and the
    write cannot miss; without, the write applies only to the version read (else `_Moved`)."""
    row = await repo.customer_row(conn, customer_id, for_update=locked)
    owner = owner_limit(ctx)
    if row is None or (owner is not None and row["owner_id"] != owner):
        raise CustomerNotFound(
            f"Customer {customer_id} does not exist", customer_id=str(customer_id)
        )
    current = open_row(row)
    check_if_match(if_match, current["version"])
    ensure_changeable(SimpleNamespace(**current))  # type: ignore[arg-type]
    audit = ctx.change_entries(
        "update", "customer", customer_id, customer_id, patch.model_fields_set
    )
    requested = patch.model_dump(mode="json", exclude_unset=True)
    new_status = requested.pop("status", None)
    for name, empty in EMPTY_COLLECTIONS.items():  # null clears a collection to empty
        if name in requested and requested[name] is None:
            requested[name] = empty()
    changes = diff({name: current[name] for name in requested}, requested)
    # `ctx.session` only where a check needs it: on the lazy context, asking for it makes one.
    if "external_ref" in changes and requested["external_ref"] is not None:
        other = await repo.by_external_ref(ctx.session, requested["external_ref"])
        if other is not None and other.id != customer_id:
            raise Conflict(
                f"external_ref {requested['external_ref']!r} is already customer {other.id}",
                existing_customer_id=str(other.id),
            )
    new_email = requested.get("email") if "email" in changes else None
    new_phone = requested.get("phone") if "phone" in changes else None
    if (new_email or new_phone) and not allow_duplicate:
        await repo.lock_identity_keys_on(
            conn, identity_keys(current["kind"], None, None, new_email, new_phone)
        )
        reject_duplicates(
            await repo.find_duplicates(
                ctx.session,
                kind=current["kind"],
                display_name=None,
                company_name=None,
                email=new_email,
                phone=new_phone,
                exclude=[customer_id],
                limit=5,
            ),
            owner,
        )
    at = ctx.now()
    assignments = {name: requested[name] for name in changes}
    archived = False
    if new_status is not None and new_status != current["status"]:
        changes["status"] = {"old": current["status"], "new": new_status}
        archived = new_status == "archived"
        assignments["status"] = new_status
        assignments["archived_at"] = at if archived else None
    if not changes:
        await conn.execute(AUDIT_FROM_JSON, audit_json(audit))
        return read_of(current)
    updated = {**current, **assignments}
    if {"kind", "display_name", "email", "phone", "company_name"} & changes.keys():
        assignments.update(protection.derived(updated))
    stored = {
        name: seal_column(name, value) if name in SEALED_TEXT or name in SEALED_JSON else value
        for name, value in assignments.items()
    }
    if "important_dates" in stored:
        stored["important_dates"] = json.dumps(stored["important_dates"])
    events: list[Any] = [
        CustomerUpdated(
            customer_id=customer_id,
            occurred_at=at,
            changed_fields=sorted(changes),
            dimensions=dimensions(updated),
        )
    ]
    if archived:
        events.append(CustomerArchived(customer_id=customer_id, occurred_at=at))
    version = await repo.update_customer_row(
        conn,
        customer_id,
        at,
        stored,
        ctx.actor,
        keyring().seal(json.dumps(changes, default=str), "customer_history.changes"),
        json.dumps([ctx.outbox.row(e) for e in events], default=str),
        audit_json(audit),
        expected_version=None if locked else current["version"],
    )
    if version is None:
        raise _Moved(customer_id)
    return read_of({**updated, "version": version, "updated_at": at})


async def archive_customer(
    ctx: RequestContext, customer_id: uuid.UUID, if_match: str | None
) -> Customer:
    await guard(ctx, customer_id)
    customer = await load(ctx.session, customer_id, for_update=True)
    await ctx.audit_change("delete", "customer", customer_id, customer_id, ["status"])
    if if_match is not None:
        check_if_match(if_match, customer.version)
    if customer.status == "merged":
        ensure_changeable(customer)
    if customer.status == "archived":
        return customer
    at = ctx.now()
    customer.status, customer.archived_at = "archived", at
    customer.version += 1
    customer.updated_at = at
    await ctx.session.flush()
    await record_history(
        ctx,
        history_row(
            customer.id,
            "customer",
            customer.id,
            "archived",
            ctx.actor,
            at,
            {"status": {"old": "active", "new": "archived"}},
        ),
    )
    await ctx.outbox.emit(ctx.session, CustomerArchived(customer_id=customer.id, occurred_at=at))
    return customer


async def duplicate_candidates(
    ctx: RequestContext, customer_id: uuid.UUID
) -> list[tuple[Customer, list[str]]]:
    await guard(ctx, customer_id)
    customer = await load(ctx.session, customer_id)
    matches = await repo.find_duplicates(
        ctx.session,
        kind=customer.kind,
        display_name=customer.display_name,
        company_name=customer.company_name,
        email=customer.email,
        phone=customer.phone,
        exclude=[customer.id],
        limit=50,
        owner_id=owner_limit(ctx),
    )
    await ctx.audit_reads([("duplicates", c, c.id) for c, _ in matches])
    return matches


async def duplicate_pairs(
    ctx: RequestContext, cursor: str | None, limit: int
) -> tuple[list[tuple[Customer, Customer, list[str]]], str | None]:
    pairs, next_cursor = await repo.duplicate_pairs(ctx.session, cursor, limit, owner_limit(ctx))
    await ctx.audit_reads([("duplicates", c, c.id) for a, b, _ in pairs for c in (a, b)])
    return pairs, next_cursor


# -- merge ---------------------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def merged_values(
    survivor: Customer, duplicate: Customer, survivorship: Mapping[str, str]
) -> dict[str, Any]:
    unknown = sorted(set(survivorship) - set(MERGEABLE_FIELDS))
    if unknown:
        raise InvalidMerge(
            f"Unknown survivorship fields: {', '.join(unknown)}",
            allowed_fields=list(MERGEABLE_FIELDS),
        )
    result: dict[str, Any] = {}
    for name in MERGEABLE_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(duplicate, name)
        choice = survivorship.get(name)
        if name == "tags":
            result[name] = list(dict.fromkeys([*(mine or []), *(theirs or [])]))
        elif name == "custom_attributes" and choice is None:
            result[name] = {**(theirs or {}), **(mine or {})}
        elif choice == "duplicate" or (choice is None and _empty(mine)):
            result[name] = theirs
        else:
            result[name] = mine
    return result


async def merge(ctx: RequestContext, survivor_id: uuid.UUID, request: MergeRequest) -> MergeResult:
    session = ctx.session
    await guard(ctx, survivor_id, request.duplicate_id)
    if request.duplicate_id == survivor_id:
        raise InvalidMerge("A customer cannot be merged into itself")
    # Lock both in id order so two opposite merges cannot deadlock.
    first, second = sorted([survivor_id, request.duplicate_id])
    locked = {first: await load(session, first, True), second: await load(session, second, True)}
    survivor, duplicate = locked[survivor_id], locked[request.duplicate_id]
    for c in (survivor, duplicate):
        if c.status == "merged" or c.erased_at is not None:
            raise InvalidMerge(
                f"Customer {c.id} is {'merged' if c.status == 'merged' else 'erased'}; "
                "it cannot take part in a merge",
                customer_id=str(c.id),
            )
    if survivor.kind != duplicate.kind:
        raise InvalidMerge("Only customers of the same kind (person/organisation) can be merged")
    values = merged_values(survivor, duplicate, request.survivorship)
    before = {name: getattr(survivor, name) for name in values}
    changes = diff(before, values)
    moved = {}
    for model in (Contact, Need, ConsentRecord):
        moved[model.__tablename__] = await repo.count_of(session, model, duplicate.id)
    insights = (await repo.get_insights(session, [survivor.id])).get(survivor.id)
    at = ctx.now()
    ids = [survivor.id, duplicate.id]
    if request.dry_run:
        # The preview shows both customers' data merged: recorded, though nothing changes.
        await ctx.audit_change(
            "merge_preview", "customer", survivor.id, ids, ctx.pii.fields_of("customer")
        )
        preview = {**customer_values(survivor), **values}
        if changes:
            preview.update(version=survivor.version + 1, updated_at=at)
        return MergeResult(
            dry_run=True,
            survivor=to_read(preview, insights),
            merged_customer_id=duplicate.id,
            changed_fields=sorted(changes),
            moved=moved,
        )
    if "external_ref" in changes:  # unique: take it off the duplicate first
        duplicate.external_ref = None
        await session.flush()
    for name, value in values.items():
        setattr(survivor, name, value)
    protection.refresh_derived(survivor)
    survivor.version += 1
    survivor.updated_at = at
    duplicate.status, duplicate.merged_into_id = "merged", survivor.id
    duplicate.version += 1
    duplicate.updated_at = at
    await session.flush()
    for model in (Contact, Need, ConsentRecord):
        await session.execute(
            sa.update(model)
            .where(model.customer_id == duplicate.id)
            .values(customer_id=survivor.id)
        )
    # Records merged into the duplicate earlier now point at the survivor too.
    await session.execute(
        sa.update(Customer)
        .where(Customer.merged_into_id == duplicate.id)
        .values(merged_into_id=survivor.id)
    )
    await record_history(
        ctx,
        history_row(
            survivor.id,
            "customer",
            survivor.id,
            "merged",
            ctx.actor,
            at,
            {**changes, "merged_customer_id": {"old": None, "new": str(duplicate.id)}},
        ),
        history_row(
            duplicate.id,
            "customer",
            duplicate.id,
            "merged_into",
            ctx.actor,
            at,
            {
                "status": {"old": "active", "new": "merged"},
                "merged_into_id": {"old": None, "new": str(survivor.id)},
            },
        ),
    )
    events: list[Any] = [
        CustomerMerged(customer_id=survivor.id, occurred_at=at, merged_customer_id=duplicate.id)
    ]
    if changes:
        events.append(
            CustomerUpdated(
                customer_id=survivor.id,
                occurred_at=at,
                changed_fields=sorted(changes),
                dimensions=dimensions(survivor),
            )
        )
    await ctx.outbox.emit(session, *events)
    await ctx.audit_change("merge", "customer", survivor.id, ids, sorted(changes))
    return MergeResult(
        dry_run=False,
        survivor=to_read(survivor, insights),
        merged_customer_id=duplicate.id,
        changed_fields=sorted(changes),
        moved=moved,
    )


async def changing(
    ctx: RequestContext,
    resource: str,
    load_record: Callable[..., Awaitable[Any]],
    customer_id: uuid.UUID,
    record_id: uuid.UUID,
    patch: Any,
    if_match: str | None,
) -> Any:
    """A contact or need about to change: locked, its ETag checked, its customer changeable,
    the change audited."""
    await guard(ctx, customer_id)
    record = await load_record(ctx.session, customer_id, record_id, for_update=True)
    check_if_match(if_match, record.version)
    ensure_changeable(await load(ctx.session, customer_id))
    await ctx.audit_change("update", resource, record_id, customer_id, patch.model_fields_set)
    return record


# -- contacts ------------------------------------------------------------------------------------


async def add_contact(ctx: RequestContext, customer_id: uuid.UUID, data: ContactCreate) -> Contact:
    await guard(ctx, customer_id)
    customer = await load(ctx.session, customer_id)
    ensure_changeable(customer)
    if customer.kind != "organisation":
        raise Unprocessable("Contacts belong to organisations; this customer is a person")
    at = ctx.now()
    values = data.model_dump(mode="json")
    contact = Contact(
        id=uuid.uuid4(), customer_id=customer.id, created_at=at, updated_at=at, **values
    )
    ctx.session.add(contact)
    await ctx.session.flush()
    await record_history(
        ctx,
        history_row(customer.id, "contact", contact.id, "created", ctx.actor, at, diff({}, values)),
    )
    await ctx.audit_change("create", "contact", contact.id, customer.id, data.model_fields_set)
    return contact


async def contacts(ctx: RequestContext, customer_id: uuid.UUID) -> list[Contact]:
    await guard(ctx, customer_id)
    await load(ctx.session, customer_id)
    found = await repo.contacts_of(ctx.session, [customer_id])
    await ctx.audit_reads([("contact", c, customer_id) for c in found])
    return found


async def read_contact(
    ctx: RequestContext, customer_id: uuid.UUID, contact_id: uuid.UUID
) -> Contact:
    await guard(ctx, customer_id)
    contact = await load_contact(ctx.session, customer_id, contact_id)
    await ctx.audit_reads([("contact", contact, customer_id)])
    return contact


async def load_contact(
    session: AsyncSession, customer_id: uuid.UUID, contact_id: uuid.UUID, for_update: bool = False
) -> Contact:
    contact = await repo.get_contact(session, customer_id, contact_id, for_update)
    if contact is None:
        raise CustomerNotFound(f"Contact {contact_id} of customer {customer_id} does not exist")
    return contact


async def update_contact(
    ctx: RequestContext,
    customer_id: uuid.UUID,
    contact_id: uuid.UUID,
    patch: ContactUpdate,
    if_match: str | None,
) -> Contact:
    contact: Contact = await changing(
        ctx, "contact", load_contact, customer_id, contact_id, patch, if_match
    )
    requested = patch.model_dump(mode="json", exclude_unset=True)
    changes = diff({k: getattr(contact, k) for k in requested}, requested)
    if changes:
        at = ctx.now()
        for name, value in requested.items():
            setattr(contact, name, value)
        contact.version += 1
        contact.updated_at = at
        await ctx.session.flush()
        await record_history(
            ctx, history_row(customer_id, "contact", contact.id, "updated", ctx.actor, at, changes)
        )
    return contact


async def remove_contact(
    ctx: RequestContext, customer_id: uuid.UUID, contact_id: uuid.UUID
) -> None:
    await guard(ctx, customer_id)
    contact = await load_contact(ctx.session, customer_id, contact_id, for_update=True)
    await ctx.session.delete(contact)
    await ctx.audit_change("delete", "contact", contact_id, customer_id)
    await record_history(
        ctx,
        history_row(
            customer_id,
            "contact",
            contact.id,
            "deleted",
            ctx.actor,
            ctx.now(),
            diff({k: getattr(contact, k) for k in ("name", "role")}, {"name": None, "role": None}),
        ),
    )


# -- needs ---------------------------------------------------------------------------------------


def need_event(need: Need, at: datetime, changed: list[str] | None = None) -> Any:
    common = {
        "customer_id": need.customer_id,
        "occurred_at": at,
        "need_id": need.id,
        "category": need.category,
        "priority": need.priority,
        "status": need.status,
        "due_date": need.due_date,
    }
    if changed is None:
        return NeedRecorded(**common)
    return NeedUpdated(**common, changed_fields=changed)


async def add_need(ctx: RequestContext, customer_id: uuid.UUID, data: NeedCreate) -> Need:
    await guard(ctx, customer_id)
    customer = await load(ctx.session, customer_id)
    ensure_changeable(customer)
    at = ctx.now()
    need = Need(
        id=uuid.uuid4(), customer_id=customer.id, created_at=at, updated_at=at, **data.model_dump()
    )
    ctx.session.add(need)
    await ctx.session.flush()
    await record_history(
        ctx,
        history_row(
            customer.id,
            "need",
            need.id,
            "created",
            ctx.actor,
            at,
            diff({}, data.model_dump(mode="json", exclude_none=True)),
        ),
    )
    await ctx.outbox.emit(ctx.session, need_event(need, at))
    await ctx.audit_change("create", "need", need.id, customer.id, data.model_fields_set)
    return need


async def needs(
    ctx: RequestContext, customer_id: uuid.UUID, status: str | None = None
) -> list[Need]:
    await guard(ctx, customer_id)
    await load(ctx.session, customer_id)
    found = await repo.needs_of(ctx.session, [customer_id], status)
    await ctx.audit_reads([("need", n, customer_id) for n in found])
    return found


async def read_need(ctx: RequestContext, customer_id: uuid.UUID, need_id: uuid.UUID) -> Need:
    await guard(ctx, customer_id)
    need = await load_need(ctx.session, customer_id, need_id)
    await ctx.audit_reads([("need", need, customer_id)])
    return need


async def load_need(
    session: AsyncSession, customer_id: uuid.UUID, need_id: uuid.UUID, for_update: bool = False
) -> Need:
    need = await repo.get_need(session, customer_id, need_id, for_update)
    if need is None:
        raise CustomerNotFound(f"Need {need_id} of customer {customer_id} does not exist")
    return need


async def update_need(
    ctx: RequestContext,
    customer_id: uuid.UUID,
    need_id: uuid.UUID,
    patch: NeedUpdate,
    if_match: str | None,
) -> Need:
    need: Need = await changing(ctx, "need", load_need, customer_id, need_id, patch, if_match)
    requested = patch.model_dump(exclude_unset=True)
    new_status = requested.get("status")
    if new_status is not None and new_status != need.status:
        if new_status not in NEED_TRANSITIONS[need.status]:
            raise NeedTransitionInvalid(
                f"A need cannot go from {need.status} to {new_status}",
                allowed=sorted(NEED_TRANSITIONS[need.status]),
            )
    changes = diff({k: getattr(need, k) for k in requested}, requested)
    if changes:
        at = ctx.now()
        for name, value in requested.items():
            setattr(need, name, value)
        need.version += 1
        need.updated_at = at
        await ctx.session.flush()
        await record_history(
            ctx, history_row(customer_id, "need", need.id, "updated", ctx.actor, at, changes)
        )
        await ctx.outbox.emit(ctx.session, need_event(need, at, sorted(changes)))
    return need


# -- consent -------------------------------------------------------------------------------------


async def change_consent(
    ctx: RequestContext, customer_id: uuid.UUID, data: ConsentChange
) -> ConsentRecord:
    session = ctx.session
    await guard(ctx, customer_id)
    customer = await load(session, customer_id, for_update=True)
    ensure_changeable(customer)
    await ctx.audit_change("update", "consent", None, customer.id, [data.purpose])
    current = await repo.current_consent(session, customer.id, data.purpose)
    at = data.occurred_at or ctx.now()
    record = ConsentRecord(
        customer_id=customer.id,
        purpose=data.purpose,
        granted=data.granted,
        source=data.source,
        recorded_by=ctx.actor,
        occurred_at=at,
    )
    session.add(record)
    await session.flush()
    await record_history(
        ctx,
        history_row(
            customer.id,
            "consent",
            customer.id,
            "granted" if data.granted else "withdrawn",
            ctx.actor,
            at,
            {data.purpose: {"old": current, "new": data.granted}},
        ),
    )
    if current is None or current != data.granted:
        await ctx.outbox.emit(
            session,
            ConsentChanged(
                customer_id=customer.id,
                occurred_at=at,
                purpose=data.purpose,
                granted=data.granted,
                source=data.source,
            ),
        )
    return record


async def consent_history(ctx: RequestContext, customer_id: uuid.UUID) -> list[ConsentRecord]:
    """Every consent record of the customer, newest first."""
    await guard(ctx, customer_id)
    await load(ctx.session, customer_id)
    return await repo.consent_history(ctx.session, [customer_id])


def current_consent(records: Sequence[ConsentRecord]) -> list[ConsentRecord]:
    """The latest record per purpose (records are newest first)."""
    seen: dict[str, ConsentRecord] = {}
    for record in records:
        seen.setdefault(record.purpose, record)
    return sorted(seen.values(), key=lambda r: r.purpose)


# -- GDPR ----------------------------------------------------------------------------------------


async def erase(ctx: RequestContext, customer_id: uuid.UUID) -> Customer:
    """Replace PII with anonymous values in every table; keep non-identifying facts."""
    session = ctx.session
    await guard(ctx, customer_id)
    customer = await load(session, customer_id, for_update=True)
    await ctx.audit_change(
        "erase", "customer", customer_id, customer_id, ctx.pii.fields_of("customer")
    )
    merged_ids = list(
        (
            await session.execute(
                sa.select(Customer.id)
                .where(Customer.merged_into_id == customer.id, Customer.erased_at.is_(None))
                .with_for_update()
            )
        ).scalars()
    )
    ids = [*([customer.id] if customer.erased_at is None else []), *merged_ids]
    if not ids:  # erased already: nothing left to scrub, nothing to announce
        return customer
    at = ctx.now()
    # Names are encrypted per row, so the anonymous values are written row by row (few rows).
    erased = (await session.execute(sa.select(Customer).where(Customer.id.in_(ids)))).scalars()
    for row in erased:
        row.display_name = f"Erased customer {row.customer_number}"
        row.legal_name = row.email = row.phone = row.notes = None
        row.addresses, row.custom_attributes = [], {}
        row.email_index = row.phone_index = row.display_name_index = None
        row.name_index = row.search_name = None
        if row.status == "active":
            row.status = "archived"
        row.archived_at = row.archived_at or at
        row.erased_at = at
        row.version += 1
        row.updated_at = at
    await session.flush()
    await session.execute(
        sa.update(Contact)
        .where(Contact.customer_id.in_(ids))
        .values(name=ERASED, email=None, phone=None, notes=None, version=Contact.version + 1)
    )
    await session.execute(
        sa.update(Need)
        .where(Need.customer_id.in_(ids))
        .values(title=ERASED, description=None, version=Need.version + 1)
    )
    entries = (
        await session.execute(sa.select(HistoryEntry).where(HistoryEntry.customer_id.in_(ids)))
    ).scalars()
    for entry in entries:
        pii = PII_BY_ENTITY.get(entry.entity, set())
        entry.changes = {
            name: ({"old": ERASED, "new": ERASED} if name in pii else change)
            for name, change in entry.changes.items()
        }
        # Sealed afresh even when unchanged: no ciphertext of the erased customer survives.
        flag_modified(entry, "changes")
    # Stored responses of earlier requests (Idempotency-Key replays) may quote PII.
    for cid in ids:
        await session.execute(
            sa.delete(idempotency_keys).where(
                sa.cast(idempotency_keys.c.body, sa.Text).contains(str(cid))
            )
        )
    await session.flush()
    await record_history(
        ctx,
        *(
            history_row(
                cid,
                "customer",
                cid,
                "erased",
                ctx.actor,
                at,
                {name: {"old": ERASED, "new": None} for name in Customer.PII_COLUMNS},
            )
            for cid in ids
        ),
    )
    await ctx.outbox.emit(
        session, *(CustomerErased(customer_id=cid, occurred_at=at) for cid in ids)
    )
    await session.refresh(customer)
    return customer


# -- bulk import ---------------------------------------------------------------------------------

CSV_LIST_SEPARATOR = ";"


def parse_import(body: bytes, content_type: str, max_rows: int) -> list[dict[str, Any] | str]:
    """Rows as dicts, or an error message for a row that is not even an object."""
    media = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable("The import must be UTF-8 text") from exc
    if not text.strip():
        raise Unprocessable("The import is empty; send at least one row")
    rows: list[dict[str, Any] | str] = []
    if media == "application/json":
        document = loads_json(text)
        if not isinstance(document, list):
            raise Unprocessable("A JSON import is an array of customer objects")
        rows = [
            value if isinstance(value, dict) else "each element must be a JSON object"
            for value in document[: max_rows + 1]
        ]
    elif media in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                value = loads_json(line, "The line")
            except InvalidJson as exc:
                rows.append(exc.detail or InvalidJson.title)
                continue
            rows.append(value if isinstance(value, dict) else "each line must be a JSON object")
            if len(rows) > max_rows:
                break
    elif media == "text/csv":
        try:
            rows.extend(_csv_rows(text, max_rows))
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
            raise Unprocessable(f"The CSV is malformed: {exc}") from exc
    else:
        raise UnsupportedImportFormat(
            "Send text/csv, application/json or application/x-ndjson, "
            f"not {media or 'no content type'}"
        )
    if len(rows) > max_rows:
        raise ImportTooLarge(f"At most {max_rows} rows per import", max_rows=max_rows)
    if not rows:
        raise Unprocessable("The import has no rows")
    return rows


def _csv_rows(text: str, max_rows: int) -> list[dict[str, Any] | str]:
    rows: list[dict[str, Any] | str] = []
    reader = csv.DictReader(io.StringIO(text))
    for record in reader:
        row: dict[str, Any] = {}
        for key, value in record.items():
            if key is None or value in (None, ""):
                continue
            if key in ("tags",):
                row[key] = [t for t in value.split(CSV_LIST_SEPARATOR) if t.strip()]
            elif key in ("addresses", "important_dates", "custom_attributes"):
                try:
                    row[key] = loads_json(value)
                except InvalidJson:
                    row[key] = value  # validation reports the field
            else:
                row[key] = value
        rows.append(row)
        if len(rows) > max_rows:
            break
    return rows


async def import_customers(
    ctx: RequestContext, rows: list[dict[str, Any] | str], allow_duplicates: bool, batch_size: int
) -> ImportResult:
    session = ctx.session
    owner = owner_limit(ctx)
    if owner is not None:
        rows = [owned_row(row, owner) for row in rows]
    results: list[ImportRowResult] = []
    valid: list[tuple[ImportRowResult, CustomerCreate]] = []
    seen_refs: set[str] = set()
    for number, raw in enumerate(rows, start=1):
        result = ImportRowResult(row=number, status="error")
        results.append(result)
        if isinstance(raw, str):
            result.errors = [{"field": "", "message": raw}]
            continue
        try:
            data = CustomerCreate.model_validate(raw)
        except ValidationError as exc:
            result.external_ref = (
                raw.get("external_ref") if isinstance(raw.get("external_ref"), str) else None
            )
            result.errors = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in exc.errors()
            ]
            continue
        result.external_ref = data.external_ref
        if data.external_ref is None:
            result.errors = [
                {"field": "external_ref", "message": "required for imports (it makes retries safe)"}
            ]
            continue
        if data.external_ref in seen_refs:
            result.errors = [
                {"field": "external_ref", "message": "appears more than once in this import"}
            ]
            continue
        seen_refs.add(data.external_ref)
        valid.append((result, data))

    # Rows already imported (an earlier or concurrent run) are reported, not created again.
    existing = await _existing_refs(session, [d.external_ref for _, d in valid if d.external_ref])
    pending: list[tuple[ImportRowResult, CustomerCreate]] = []
    for result, data in valid:
        hit = existing.get(data.external_ref or "")
        if hit is not None:
            result.status, result.customer_id, result.customer_number = "existing", *hit
        else:
            pending.append((result, data))

    if not allow_duplicates and pending:
        pending = await _drop_duplicates(session, pending)

    at = ctx.now()
    for start in range(0, len(pending), batch_size):
        await _insert_batch(ctx, pending[start : start + batch_size], at)
    created = [r.customer_id for r in results if r.status == "created" and r.customer_id]
    sent = {key for row in rows if isinstance(row, dict) for key in row}
    await ctx.audit_change("import", "customer", None, created, sorted(sent & set(CUSTOMER_FIELDS)))
    return ImportResult(
        created=sum(r.status == "created" for r in results),
        existing=sum(r.status == "existing" for r in results),
        failed=sum(r.status == "error" for r in results),
        rows=results,
    )


async def _existing_refs(
    session: AsyncSession, refs: list[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    if not refs:
        return {}
    rows = await session.execute(
        sa.select(Customer.external_ref, Customer.id, Customer.customer_number).where(
            Customer.external_ref == sa.func.any(sa.literal(refs, sa.ARRAY(sa.Text)))
        )
    )
    return {ref: (cid, number) for ref, cid, number in rows.all() if ref is not None}


async def _drop_duplicates(
    session: AsyncSession, pending: list[tuple[ImportRowResult, CustomerCreate]]
) -> list[tuple[ImportRowResult, CustomerCreate]]:
    # Compared by blind index (the values are encrypted); keys are the index values.
    emails = sorted({protection.email_index(d.email) or "" for _, d in pending if d.email})
    phones = sorted({protection.phone_index(d.phone) or "" for _, d in pending if d.phone})
    known: dict[str, str] = {}
    if emails or phones:
        rows = await session.execute(
            sa.select(Customer.id, Customer.email_index, Customer.phone_index).where(
                Customer.status != "merged",
                sa.or_(
                    Customer.email_index == sa.func.any(sa.literal(emails, sa.ARRAY(sa.Text))),
                    Customer.phone_index == sa.func.any(sa.literal(phones, sa.ARRAY(sa.Text))),
                ),
            )
        )
        for cid, email_key, phone_key in rows.all():
            if email_key:
                known[f"email:{email_key}"] = str(cid)
            if phone_key:
                known[f"phone:{phone_key}"] = str(cid)
    kept = []
    for result, data in pending:
        keys = (
            ("email", protection.email_index(data.email)),
            ("phone", protection.phone_index(data.phone)),
        )
        errors = [
            {
                "field": name,
                "message": f"same {name} as existing customer {known[f'{name}:{value}']}",
            }
            for name, value in keys
            if value and f"{name}:{value}" in known
        ]
        if errors:
            result.errors = errors
        else:
            kept.append((result, data))
            # A later row of the same import with the same contact detail is a duplicate too.
            for name, value in keys:
                if value:
                    known.setdefault(f"{name}:{value}", f"of row {result.row}")
    return kept


async def _insert_batch(
    ctx: RequestContext, batch: list[tuple[ImportRowResult, CustomerCreate]], at: datetime
) -> None:
    session = ctx.session
    table = table_of(Customer)
    values = []
    for _, data in batch:
        fields = data.model_dump(mode="json")
        values.append(
            {
                "id": uuid.uuid4(),
                "created_at": at,
                "updated_at": at,
                **fields,
                **protection.derived(fields),
            }
        )
    # executemany: one compiled statement, sent as multi-row VALUES pages (insertmanyvalues).
    inserted = await session.execute(
        insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.external_ref])
        .returning(*table.c),
        values,
    )
    created = {r.external_ref: r for r in inserted.all()}
    lost = [d.external_ref for r, d in batch if d.external_ref not in created]
    existing = await _existing_refs(session, [ref for ref in lost if ref])
    history: list[dict[str, Any]] = []
    events: list[Any] = []
    for (result, data), value in zip(batch, values, strict=True):
        inserted_row = created.get(data.external_ref)
        if inserted_row is None:  # a concurrent import won the external_ref
            hit = existing.get(data.external_ref or "")
            if hit is not None:
                result.status, result.customer_id, result.customer_number = "existing", *hit
            continue
        result.status, result.customer_id, result.customer_number = (
            "created",
            inserted_row.id,
            inserted_row.customer_number,
        )
        history.append(
            history_row(
                inserted_row.id,
                "customer",
                inserted_row.id,
                "imported",
                ctx.actor,
                at,
                {  # already JSON values (model_dump(mode="json"))
                    k: {"old": None, "new": v}
                    for k, v in value.items()
                    if k in CUSTOMER_FIELDS and v not in (None, [], {})
                },
            )
        )
        events.append(
            CustomerCreated(
                customer_id=inserted_row.id,
                occurred_at=at,
                dimensions=dimensions(inserted_row._asdict()),
            )
        )
    await record_history(ctx, *history)
    await ctx.outbox.emit(session, *events)


# -- insights (consumed from analytics) ----------------------------------------------------------


# The insights whose change moves the customer's `updated_at` (a churn score within its level
# does not: it moves with time alone and would flood incremental syncs).
VISIBLE_INSIGHTS = ("tier", "lifecycle_stage", "churn_risk_level")


# An analytics insight: (customer, the time column of its kind, the columns it sets).
Insight = tuple[uuid.UUID, str, dict[str, Any]]


async def apply_insights(ctx: RequestContext, insights: Sequence[Insight]) -> None:
    """Apply a batch of analytics insights, in order, each unless a newer one of its kind was.

    Each insight that visibly changes its customer (`VISIBLE_INSIGHTS`) moves `updated_at` and
    publishes a `customer.updated` naming the fields it changed, with the insights as they
    stood after it. One statement each to lock the insights rows, write them and touch the
    changed customers, and one per 50 events recorded."""
    if not insights:
        return
    session = ctx.session
    insights = [(uuid.UUID(str(c)), at_column, values) for c, at_column, values in insights]
    state = await repo.lock_insights(session, [customer_id for customer_id, _, _ in insights])
    written: set[uuid.UUID] = set()
    changes: list[tuple[uuid.UUID, list[str], dict[str, Any]]] = []
    for customer_id, at_column, values in insights:
        row = state.setdefault(customer_id, dict.fromkeys(repo.INSIGHT_COLUMNS, None))
        if row[at_column] is not None and row[at_column] > values[at_column]:
            continue  # older than what was applied
        changed = [n for n in VISIBLE_INSIGHTS if n in values and values[n] != row[n]]
        row.update(values)
        written.add(customer_id)
        if changed:
            changes.append((customer_id, changed, {n: row[n] for n in VISIBLE_INSIGHTS}))
    await repo.write_insights(session, [{**state[c], "customer_id": c} for c in sorted(written)])
    if not changes:
        return
    at = ctx.now()
    live = await repo.touch_customers(session, [c for c, _, _ in changes], at)
    async for step in in_steps(changes):
        await ctx.outbox.emit(
            session,
            *(
                CustomerUpdated(
                    customer_id=customer_id,
                    occurred_at=at,
                    changed_fields=changed,
                    dimensions=dimensions(live[customer_id]),
                    insights=CustomerInsightValues(**insights_after),
                )
                for customer_id, changed, insights_after in step
                if customer_id in live  # not unknown, merged away or erased
            ),
        )


async def apply_insight(
    ctx: RequestContext, customer_id: uuid.UUID, at_column: str, values: dict[str, Any]
) -> None:
    """Apply one analytics insight (see `apply_insights`)."""
    await apply_insights(ctx, [(customer_id, at_column, values)])
