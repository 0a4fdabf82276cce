"""Apply a batch of domain events to the read models with set-based statements.

Events arrive in any order across topics and possibly twice (the inbox filters exact
duplicates; the upserts here are idempotent anyway, so a rebuild can replay a feed). Every
event of a batch is folded in Python into one row per key, then written with one multi-row
INSERT ... ON CONFLICT per table, whose merge rules make the result independent of order:
write-once fields coalesce, timestamps keep the latest, flags OR, counters add.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID, Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import cases
from services.analytics import models as m
from services.analytics.config import Settings
from services.analytics.metrics_sql import Clock, lifecycle_and_churn, refresh_facts
from shared.contracts import complaints as cc
from shared.contracts import customers as pc
from shared.contracts import interactions as ic
from shared.contracts.cases import CaseEvent
from shared.contracts.common import CustomerEvent
from shared.contracts.loyalty import LevelChanged
from shared.db import json_default, rows_json
from shared.events.envelope import CloudEvent
from shared.events.registry import REGISTRY

CONTRACTS: tuple[type[CustomerEvent], ...] = (
    pc.CustomerCreated,
    pc.CustomerUpdated,
    pc.CustomerArchived,
    pc.CustomerMerged,
    pc.CustomerErased,
    ic.InteractionLogged,
    ic.PurchaseRecorded,
    ic.PurchaseRefunded,
    ic.PurchaseCancelled,
    ic.SurveySubmitted,
    ic.FollowupScheduled,
    ic.FollowupCompleted,
    ic.FollowupOverdue,
    ic.FollowupCancelled,
    cc.ComplaintReceived,
    cc.ComplaintAssigned,
    cc.ComplaintStatusChanged,
    cc.ComplaintAcknowledged,
    cc.ComplaintEscalated,
    cc.ComplaintSlaBreached,
    cc.ComplaintResolved,
    cc.ComplaintReopened,
    cc.ComplaintClosed,
    cc.ComplaintRated,
    *cases.CONTRACTS,
    LevelChanged,
)
EVENT_TYPES = frozenset(c.event_type() for c in CONTRACTS)
# Events are told apart by their exact class (parse gives the registered contracts only):
# `isinstance` on a pydantic model goes through ABCMeta, and a dozen of those per event cost
# more than the rest of its fold.
CASE_CONTRACTS = frozenset(c for c in CONTRACTS if issubclass(c, CaseEvent))

DIMENSION_COLUMNS = (
    "kind",
    "customer_number",
    "industry",
    "region",
    "company_size",
    "source_channel",
    "owner_id",
    "status",
)
# What could single a customer out; `status` (active / archived) stays.
ANONYMISED_DIMENSIONS = tuple(c for c in DIMENSION_COLUMNS if c != "status")
COMPLAINT_COLUMNS = [c.name for c in m.complaints.columns]
PURCHASE_COLUMNS = [c.name for c in m.purchases.columns]
FOLLOWUP_COLUMNS = [c.name for c in m.followups.columns]
PURCHASE_TYPES = {
    "purchase_id": "uuid",
    "customer_id": "uuid",
    "amount": "numeric",
    "cost": "numeric",
    "margin": "numeric",
    "currency": "text",
    "reporting_amount": "numeric",
    "reporting_margin": "numeric",
    "status": "text",
    "occurred_at": "timestamptz",
    "cancelled": "boolean",
}
assert list(PURCHASE_TYPES) == PURCHASE_COLUMNS, "keep PURCHASE_TYPES in column order"
PURCHASE_MERGED = [c for c in PURCHASE_COLUMNS if c not in ("purchase_id", "cancelled")]


INSIGHT_FIELDS = frozenset({"tier", "lifecycle_stage", "churn_risk_level"})


def parse(events: Iterable[CloudEvent]) -> list[CustomerEvent]:
    """The typed contracts of the events analytics uses (others are skipped).

    An event read from Kafka undecoded (`raw_data`) is decoded and validated in one pass,
    usually ahead of the batch (`validate_ahead`)."""
    parsed = []
    for event in events:
        if event.type in EVENT_TYPES:
            contract = event.payload or _validate(event)
            parsed.append(contract)
    return parsed


def _validate(event: CloudEvent) -> CustomerEvent:
    raw = event.raw_data
    contract = (
        REGISTRY.get(event.type).model_validate_json(raw)
        if raw is not None
        else REGISTRY.parse(event.type, event.data)
    )
    # Every type of EVENT_TYPES is a CustomerEvent (CONTRACTS); no isinstance per event (ABCMeta).
    return cast(CustomerEvent, contract)


def validate_ahead(events: list[CloudEvent]) -> None:
    """The consumer's read-ahead: validate each payload while the batch before is applied.

    An invalid one is left unvalidated: `parse` fails on it again inside the batch, where the
    consumer retries it alone and parks it on the dead-letter topic."""
    for event in events:
        if event.type in EVENT_TYPES:
            try:
                event.keep_payload(_validate(event))
            except ValueError:  # pydantic's ValidationError among them
                pass


def _later(current: datetime | None, candidate: datetime) -> bool:
    return current is None or candidate >= current


class _Fold:
    """One batch folded to one row per key and table."""

    def __init__(self, reporting_currency: str) -> None:
        self.reporting_currency = reporting_currency
        self.dimensions: dict[uuid.UUID, dict[str, Any]] = {}
        self.archived: dict[uuid.UUID, datetime] = {}
        self.erased: dict[uuid.UUID, datetime] = {}
        self.purchases: dict[uuid.UUID, dict[str, Any]] = {}
        self.refunds: dict[uuid.UUID, dict[str, Any]] = {}
        self.interactions: dict[uuid.UUID, dict[str, Any]] = {}
        self.surveys: dict[uuid.UUID, dict[str, Any]] = {}
        self.answers: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
        self.complaints: dict[uuid.UUID, dict[str, Any]] = {}
        self.followups: dict[uuid.UUID, dict[str, Any]] = {}
        self.agent_teams: dict[str, dict[str, Any]] = {}
        self.levels: dict[uuid.UUID, dict[str, Any]] = {}
        self.customers: set[uuid.UUID] = set()

    def purchase(self, purchase_id: uuid.UUID, customer_id: uuid.UUID) -> dict[str, Any]:
        row = self.purchases.get(purchase_id)
        if row is None:
            row = dict.fromkeys(PURCHASE_COLUMNS)
            row.update(purchase_id=purchase_id, customer_id=customer_id, cancelled=False)
            self.purchases[purchase_id] = row
        return row

    def complaint(self, complaint_id: uuid.UUID, customer_id: uuid.UUID) -> dict[str, Any]:
        row = self.complaints.get(complaint_id)
        if row is None:
            row = dict.fromkeys(COMPLAINT_COLUMNS)
            row.update(
                complaint_id=complaint_id,
                customer_id=customer_id,
                first_response_breached=False,
                resolution_breached=False,
                reopen_count=0,
            )
            self.complaints[complaint_id] = row
        return row

    def in_reporting_currency(
        self, e: ic.PurchaseRecorded | ic.PurchaseRefunded
    ) -> tuple[Decimal | None, Decimal | None]:
        """(amount, margin) in the reporting currency: as interactions converted them, or as
        they are when already in it; (None, None) otherwise (never added to other money)."""
        if e.reporting_currency == self.reporting_currency and e.reporting_amount is not None:
            return e.reporting_amount, e.reporting_margin
        if e.currency == self.reporting_currency:
            return e.amount, e.margin
        return None, None

    def status(self, row: dict[str, Any], status: str, at: datetime) -> None:
        if _later(row["status_at"], at):
            row["status"], row["status_at"] = status, at

    def add(self, e: CustomerEvent, customer_id: uuid.UUID) -> None:
        if type(e) is ic.PurchaseRecorded:  # most events of a backlog
            self.customers.add(customer_id)
            self.add_purchase(e, customer_id)
            return
        if (
            isinstance(e, pc.CustomerUpdated)
            and e.insights is not None
            and set(e.changed_fields) <= INSIGHT_FIELDS
        ):
            return  # profiles echoing analytics' own insight change: nothing new here
        if isinstance(e, ic.FollowupFields):
            self.add_followup(e, customer_id)  # staff figures only: no customer fact changes
            return
        self.customers.add(customer_id)
        at = e.occurred_at
        if isinstance(e, pc.CustomerCreated | pc.CustomerUpdated):
            current = self.dimensions.get(customer_id)
            if current is None or at >= current["dimensions_at"]:
                dims = e.dimensions
                self.dimensions[customer_id] = {
                    "customer_id": customer_id,
                    **{c: getattr(dims, c) for c in DIMENSION_COLUMNS},
                    "dimensions_at": at,
                    "profile_known": True,
                }
        elif isinstance(e, pc.CustomerArchived):
            self.archived[customer_id] = max(at, self.archived.get(customer_id, at))
        elif isinstance(e, pc.CustomerErased):
            self.erased[customer_id] = min(at, self.erased.get(customer_id, at))
        elif isinstance(e, ic.PurchaseRecorded):
            self.add_purchase(e, customer_id)
        elif isinstance(e, ic.PurchaseCancelled):
            self.purchase(e.purchase_id, customer_id)["cancelled"] = True
        elif isinstance(e, ic.PurchaseRefunded):
            reporting_amount, reporting_margin = self.in_reporting_currency(e)
            self.refunds[e.refund_id] = {
                "refund_id": e.refund_id,
                "purchase_id": e.purchase_id,
                "customer_id": customer_id,
                "amount": e.amount,
                "margin": e.margin,
                "currency": e.currency,
                "reporting_amount": reporting_amount,
                "reporting_margin": reporting_margin,
                "occurred_at": at,
            }
        elif isinstance(e, ic.InteractionLogged):
            self.interactions[e.interaction_id] = {
                "interaction_id": e.interaction_id,
                "customer_id": customer_id,
                "channel": e.channel,
                "direction": e.direction,
                "occurred_at": at,
                "agent_id": e.agent_id,
            }
        elif isinstance(e, ic.SurveySubmitted):
            self.surveys[e.survey_id] = {
                "survey_id": e.survey_id,
                "customer_id": customer_id,
                "channel": e.channel,
                "context_type": e.context_type,
                "occurred_at": at,
                "nps": e.nps,
                "effort": e.effort,
            }
            for dimension, score in e.scores.items():
                self.answers[(e.survey_id, dimension)] = {
                    "survey_id": e.survey_id,
                    "dimension": dimension,
                    "score": score,
                }
        elif isinstance(e, cc.ComplaintEvent):
            self.add_complaint(e, customer_id)

    def add_purchase(self, e: ic.PurchaseRecorded, customer_id: uuid.UUID) -> None:
        reporting_amount, reporting_margin = self.in_reporting_currency(e)
        row = self.purchases.get(e.purchase_id)
        if row is None:  # the common case: the row in one go
            self.purchases[e.purchase_id] = {
                "purchase_id": e.purchase_id,
                "customer_id": customer_id,
                "amount": e.amount,
                "cost": e.cost,
                "margin": e.margin,
                "currency": e.currency,
                "reporting_amount": reporting_amount,
                "reporting_margin": reporting_margin,
                "status": e.status,
                "occurred_at": e.occurred_at,
                "cancelled": False,
            }
            return
        row.update(
            amount=e.amount,
            cost=e.cost,
            margin=e.margin,
            currency=e.currency,
            reporting_amount=reporting_amount,
            reporting_margin=reporting_margin,
            status=e.status,
            occurred_at=e.occurred_at,
        )

    def add_level(self, e: LevelChanged) -> None:
        """The latest level per customer. Keyed by the event's own id, not a merge survivor:
        loyalty already publishes a merged member's later changes for the survivor, and a
        duplicate's change from before the merge says nothing about the survivor's level."""
        self.customers.add(e.customer_id)
        current = self.levels.get(e.customer_id)
        if current is None or e.occurred_at >= current["loyalty_level_at"]:
            self.levels[e.customer_id] = {
                "customer_id": e.customer_id,
                "loyalty_level": e.level,
                "loyalty_level_at": e.occurred_at,
            }

    def add_followup(self, e: ic.FollowupFields, customer_id: uuid.UUID) -> None:
        row = self.followups.get(e.followup_id)
        if row is None:
            row = dict.fromkeys(FOLLOWUP_COLUMNS)
            row["followup_id"] = e.followup_id
            self.followups[e.followup_id] = row
        row.update(customer_id=customer_id, kind=e.kind, due_at=e.due_at)
        row["assignee_id"] = e.assignee_id or row["assignee_id"]
        at = e.occurred_at
        if isinstance(e, ic.FollowupScheduled):
            row["scheduled_at"] = at
        elif isinstance(e, ic.FollowupCompleted):
            row["completed_at"], row["interaction_id"] = at, e.interaction_id
        elif isinstance(e, ic.FollowupOverdue):
            row["overdue_at"] = at
        elif isinstance(e, ic.FollowupCancelled):
            row["cancelled_at"] = at

    def add_complaint(self, e: cc.ComplaintEvent, customer_id: uuid.UUID) -> None:
        row = self.complaint(e.complaint_id, customer_id)
        at = e.occurred_at
        if isinstance(e, cc.ComplaintAssigned):
            if _later(row["assigned_at"], at):
                row.update(assignee=e.assignee_id, team=e.team, assigned_at=at)
            current = self.agent_teams.get(e.assignee_id or "")
            if e.assignee_id and e.team and (current is None or at >= current["assigned_at"]):
                self.agent_teams[e.assignee_id] = {
                    "agent_id": e.assignee_id,
                    "team": e.team,
                    "assigned_at": at,
                }
        elif isinstance(e, cc.ComplaintReceived):
            row.update(
                channel=e.channel,
                category=row["category"] or e.category,
                severity=row["severity"] or e.severity,
                received_at=at,
                first_response_due_at=e.first_response_due_at,
                resolution_due_at=e.resolution_due_at,
            )
            if row["status"] is None:
                row["status"], row["status_at"] = "received", at
        elif isinstance(e, cc.ComplaintStatusChanged):
            self.status(row, e.to_status, at)
        elif isinstance(e, cc.ComplaintAcknowledged):
            row.update(
                acknowledged_at=at,
                first_response_seconds=e.first_response_seconds,
                first_response_met=e.first_response_met,
            )
        elif isinstance(e, cc.ComplaintEscalated):
            row["escalation_level"] = max(e.level, row["escalation_level"] or 0)
        elif isinstance(e, cc.ComplaintSlaBreached):
            row[f"{e.target}_breached"] = True
        elif isinstance(e, cc.ComplaintResolved):
            if _later(row["resolved_at"], at):
                row.update(
                    category=e.category,
                    severity=e.severity,
                    root_cause=e.root_cause,
                    resolved_at=at,
                    resolution_seconds=e.resolution_seconds,
                    resolution_met=e.resolution_met,
                )
            self.status(row, "resolved", at)
        elif isinstance(e, cc.ComplaintReopened):
            row["reopen_count"] += 1
        elif isinstance(e, cc.ComplaintClosed):
            row["closed_at"] = at
            self.status(row, "closed", at)
        elif isinstance(e, cc.ComplaintRated) and _later(row["rated_at"], at):
            row["rating"], row["rated_at"] = e.rating, at


def _latest(table: sa.Table, ts: str, *columns: str) -> dict[str, Any]:
    """SET clauses: take the incoming values when their timestamp is the later one."""
    incoming = insert(table).excluded
    newer = sa.or_(table.c[ts].is_(None), incoming[ts] >= table.c[ts])
    return {
        c: sa.case((sa.and_(incoming[ts].is_not(None), newer), incoming[c]), else_=table.c[c])
        for c in (*columns, ts)
    }


async def _merge_aliases(session: AsyncSession, merges: list[pc.CustomerMerged]) -> None:
    """Record merges and re-point the merged customers' facts to their survivors."""
    for merge in sorted(merges, key=lambda e: e.occurred_at):
        survivor, merged = merge.customer_id, merge.merged_customer_id
        if survivor == merged:
            continue
        a = m.customer_aliases
        await session.execute(
            insert(a)
            .values(merged_customer_id=merged, survivor_id=survivor)
            .on_conflict_do_update(
                index_elements=[a.c.merged_customer_id], set_={"survivor_id": survivor}
            )
        )
        await session.execute(
            sa.update(a).where(a.c.survivor_id == merged).values(survivor_id=survivor)
        )
        for table in (
            m.purchases,
            m.refunds,
            m.interactions,
            m.surveys,
            m.complaints,
            m.case_facts,
            m.followups,
        ):
            await session.execute(
                sa.update(table).where(table.c.customer_id == merged).values(customer_id=survivor)
            )
        await session.execute(
            insert(m.customer_facts)
            .values([{"customer_id": survivor}, {"customer_id": merged}])
            .on_conflict_do_nothing()
        )
        await session.execute(
            sa.update(m.customer_facts)
            .where(m.customer_facts.c.customer_id == merged)
            .values(merged_into=survivor)
        )


async def _aliases(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    if not ids:
        return {}
    a = m.customer_aliases
    rows = await session.execute(
        sa.select(a.c.merged_customer_id, a.c.survivor_id).where(
            a.c.merged_customer_id.in_(_uuid_array(ids))
        )
    )
    return {row.merged_customer_id: row.survivor_id for row in rows}


def _uuid_array(ids: Iterable[uuid.UUID]) -> Any:
    """The ids as rows of one sub-select (`col.in_(...)`) on one array parameter, instead of
    an IN list of one parameter per id (a batch has thousands: binding them one by one cost
    more than the query). The array goes as its text: see `uuid_array_text`.

    Unnested in a sub-select, the array is parsed once: a cast in `col = ANY(...)` was planned
    as a sequential scan that parsed it again for every row."""
    text = sa.bindparam(None, uuid_array_text(ids), type_=sa.Text)
    return sa.select(sa.func.unnest(sa.cast(text, ARRAY(UUID(as_uuid=True)))))


def uuid_array_text(ids: Iterable[uuid.UUID]) -> str:
    """The text of a `uuid[]` (`{a,b}`), for PostgreSQL to parse: asyncpg checks and encodes
    the elements of an array parameter one by one in Python, ~1 us each."""
    # orjson writes ["a","b"]; uuids need no quotes in an array literal.
    listed = orjson.dumps(list(ids), default=json_default)[1:-1].replace(b'"', b"")
    return "{" + listed.decode() + "}"


async def _erased(session: AsyncSession, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    e = m.erased_customers
    rows = await session.execute(
        sa.select(e.c.customer_id).where(e.c.customer_id.in_(_uuid_array(ids)))
    )
    return set(rows.scalars())


async def apply(
    session: AsyncSession,
    contracts: list[CustomerEvent],
    reporting_currency: str,
    *,
    stale: bool = False,
) -> set[uuid.UUID]:
    """Fold the events into the fact tables; the (survivor) ids of the customers touched.

    Nothing more is ingested about a customer already erased (a late or replayed event).
    `stale`: the touched customers' facts are left to the re-rank (marked `facts_at` null)."""
    erased = await _erased(session, {e.customer_id for e in contracts})
    contracts = [e for e in contracts if e.customer_id not in erased]
    merges = [e for e in contracts if type(e) is pc.CustomerMerged]
    if merges:
        await _merge_aliases(session, merges)
    alias = await _aliases(session, {e.customer_id for e in contracts})
    fold = _Fold(reporting_currency)
    case_events = [cast(CaseEvent, e) for e in contracts if type(e) in CASE_CONTRACTS]
    await cases.write(session, cases.fold(case_events, alias))
    for e in contracts:
        if type(e) in CASE_CONTRACTS:
            continue
        if type(e) is LevelChanged:
            fold.add_level(e)
            continue
        if type(e) is pc.CustomerMerged:
            fold.customers.update({alias.get(e.customer_id, e.customer_id), e.merged_customer_id})
            continue
        fold.add(e, alias.get(e.customer_id, e.customer_id))
    await _write(session, fold, stale)
    for customer_id, at in fold.erased.items():
        anonymous = await erase_customer(session, customer_id, at)
        fold.customers.discard(customer_id)
        if anonymous is not None:
            fold.customers.add(anonymous)
    return fold.customers


async def _write(session: AsyncSession, fold: _Fold, stale: bool) -> None:
    f = m.customer_facts
    if fold.customers:
        await session.execute(
            sa.text(
                # In id order (as PostgreSQL sorts: uuid comparisons in Python cost more),
                # so concurrent batches take the rows' locks in one order. Stale facts are
                # marked in the same statement (an erased customer's row carries the mark to
                # its anonymous id).
                "INSERT INTO customer_facts (customer_id) "
                "SELECT id FROM unnest(CAST(CAST(:ids AS text) AS uuid[])) AS id ORDER BY id "
                + (
                    "ON CONFLICT (customer_id) DO UPDATE SET facts_at = NULL"
                    if stale
                    else "ON CONFLICT DO NOTHING"
                )
            ),
            {"ids": uuid_array_text(fold.customers)},
        )
    if fold.dimensions:
        await session.execute(_dimensions_upsert(), list(fold.dimensions.values()))
    if fold.levels:
        await session.execute(_levels_upsert(), list(fold.levels.values()))
    for customer_id, at in fold.archived.items():
        await session.execute(
            sa.update(f)
            .where(
                f.c.customer_id == customer_id,
                sa.or_(f.c.dimensions_at.is_(None), f.c.dimensions_at <= at),
            )
            .values(status="archived", dimensions_at=at)
        )
    if fold.purchases:
        await _write_purchases(session, list(fold.purchases.values()))
    for table, rows in (
        (m.refunds, fold.refunds.values()),
        (m.interactions, fold.interactions.values()),
        (m.surveys, fold.surveys.values()),
        (m.survey_answers, fold.answers.values()),
    ):
        if rows:
            await session.execute(_insert_new(table), list(rows))
    if fold.complaints:
        await _write_complaints(session, list(fold.complaints.values()))
    if fold.followups:
        await _write_followups(session, list(fold.followups.values()))
    if fold.agent_teams:
        await session.execute(_agent_teams_upsert(), list(fold.agent_teams.values()))


# The batch writes' statements, built once: building one (its EXCLUDED columns above all) and
# its cache key cost more than running it on a small batch.


@functools.cache
def _dimensions_upsert() -> Insert:
    f = m.customer_facts
    set_ = _latest(f, "dimensions_at", *DIMENSION_COLUMNS)
    set_["profile_known"] = sa.true()
    return insert(f).on_conflict_do_update(index_elements=[f.c.customer_id], set_=set_)


@functools.cache
def _levels_upsert() -> Insert:
    f = m.customer_facts
    return insert(f).on_conflict_do_update(
        index_elements=[f.c.customer_id], set_=_latest(f, "loyalty_level_at", "loyalty_level")
    )


@functools.cache
def _agent_teams_upsert() -> Insert:
    t = m.agent_teams
    return insert(t).on_conflict_do_update(
        index_elements=[t.c.agent_id], set_=_latest(t, "assigned_at", "team")
    )


@functools.cache
def _insert_new(table: sa.Table) -> Insert:
    return insert(table).on_conflict_do_nothing()


# The batch's purchases as one JSON document, expanded into rows by PostgreSQL: one statement
# and one parameter however many purchases it holds (the hot path of a backlog). One array per
# column cost more: asyncpg checks and encodes every element in Python (~55,000 a batch).
PURCHASES_UPSERT = sa.text(
    f"""
    INSERT INTO purchases ({", ".join(PURCHASE_COLUMNS)})
    SELECT {", ".join(PURCHASE_COLUMNS)}
    FROM json_to_recordset(CAST(:rows AS json))
        AS r({", ".join(f"{c} {t}" for c, t in PURCHASE_TYPES.items())})
    ON CONFLICT (purchase_id) DO UPDATE SET
        {", ".join(f"{c} = coalesce(excluded.{c}, purchases.{c})" for c in PURCHASE_MERGED)},
        cancelled = purchases.cancelled OR excluded.cancelled
    """
)


async def _write_purchases(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(PURCHASES_UPSERT, {"rows": rows_json(rows)})


async def _write_followups(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(_followups_upsert(), rows)


@functools.cache
def _followups_upsert() -> Insert:
    fu = m.followups
    stmt = insert(fu)
    x = stmt.excluded
    set_: dict[str, Any] = {
        col: sa.func.coalesce(x[col], fu.c[col])
        for col in FOLLOWUP_COLUMNS
        if col not in ("followup_id", "completed_at", "overdue_at", "cancelled_at")
    }
    # A follow-up is completed, overdue or cancelled once: the first time recorded stays.
    for col in ("completed_at", "overdue_at", "cancelled_at"):
        set_[col] = sa.func.coalesce(fu.c[col], x[col])
    return stmt.on_conflict_do_update(index_elements=[fu.c.followup_id], set_=set_)


async def erase_customer(
    session: AsyncSession, customer_id: uuid.UUID, at: datetime
) -> uuid.UUID | None:
    """Anonymise the customer: their rows move to a fresh random id, the dimensions (the
    loyalty level with them) go.

    The figures stay in the aggregates (tier counts, revenue, satisfaction, complaint stats;
    by dimension they count as unknown); nothing links the anonymous id to the customer, and
    nothing is published about it. The ids merged into the customer go with them. Their
    tier, lifecycle and churn-risk history leaves the event log (what was not sent yet is
    not sent: subscribers erase the customer themselves on `customer.erased`). Returns the
    anonymous id, or None when analytics knew nothing of the customer (nothing is kept)."""
    f, a = m.customer_facts, m.customer_aliases
    merged = set(
        (
            await session.execute(
                sa.select(a.c.merged_customer_id).where(a.c.survivor_id == customer_id)
            )
        ).scalars()
    )
    ids = {customer_id, *merged}
    anonymous: uuid.UUID | None = uuid.uuid4()
    moved = 0
    for table in (
        m.purchases,
        m.refunds,
        m.interactions,
        m.surveys,
        m.complaints,
        m.case_facts,
        m.followups,
    ):
        result = await session.execute(
            sa.update(table)
            .where(table.c.customer_id.in_(ids))
            .values(customer_id=anonymous)
            .returning(sa.literal(1))
        )
        moved += len(result.all())
    known = await session.scalar(sa.select(f.c.profile_known).where(f.c.customer_id == customer_id))
    if not moved and not known:
        anonymous = None  # only the placeholder row of this batch: nothing to keep
    else:
        await session.execute(
            sa.update(f)
            .where(f.c.customer_id == customer_id)
            .values(
                customer_id=anonymous,
                erased=True,
                merged_into=None,
                dimensions_at=None,
                loyalty_level=None,
                loyalty_level_at=None,
                **dict.fromkeys(ANONYMISED_DIMENSIONS),
            )
        )
    await session.execute(sa.delete(f).where(f.c.customer_id.in_(ids)))
    await session.execute(
        sa.delete(a).where(sa.or_(a.c.survivor_id.in_(ids), a.c.merged_customer_id.in_(ids)))
    )
    o = m.outbox
    await session.execute(sa.delete(o).where(o.c.subject.in_([str(i) for i in ids])))
    e = m.erased_customers
    await session.execute(
        insert(e).on_conflict_do_nothing(), [{"customer_id": i, "erased_at": at} for i in ids]
    )
    return anonymous


async def _write_complaints(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await session.execute(_complaints_upsert(), rows)


@functools.cache
def _complaints_upsert() -> Insert:
    c = m.complaints
    stmt = insert(c)
    x = stmt.excluded
    set_: dict[str, Any] = {
        col: sa.func.coalesce(x[col], c.c[col])
        for col in (
            "channel",
            "received_at",
            "first_response_due_at",
            "resolution_due_at",
            "acknowledged_at",
            "first_response_seconds",
            "first_response_met",
            "closed_at",
        )
    }
    # Category and severity as received, until a resolution restates them.
    for col in ("category", "severity"):
        set_[col] = sa.case(
            (
                sa.and_(
                    x.resolved_at.is_not(None),
                    sa.or_(c.c.resolved_at.is_(None), x.resolved_at >= c.c.resolved_at),
                ),
                sa.func.coalesce(x[col], c.c[col]),
            ),
            else_=sa.func.coalesce(c.c[col], x[col]),
        )
    set_.update(_latest(c, "status_at", "status"))
    set_.update(_latest(c, "resolved_at", "root_cause", "resolution_seconds", "resolution_met"))
    set_.update(_latest(c, "rated_at", "rating"))
    set_.update(_latest(c, "assigned_at", "assignee", "team"))
    set_["first_response_breached"] = sa.or_(c.c.first_response_breached, x.first_response_breached)
    set_["resolution_breached"] = sa.or_(c.c.resolution_breached, x.resolution_breached)
    set_["reopen_count"] = c.c.reopen_count + x.reopen_count
    set_["escalation_level"] = sa.func.greatest(c.c.escalation_level, x.escalation_level)
    return stmt.on_conflict_do_update(index_elements=[c.c.complaint_id], set_=set_)


async def request_rerank(session: AsyncSession, settings: Settings) -> None:
    """Push the debounced global re-rank out, bounded by the maximum delay.

    Taken first in every batch: the row lock orders batches against the re-ranks and rebuilds
    that run in one transaction (`recompute.lock_state`). The background re-rank takes it only
    for an instant, so batches never wait for it (see `recompute.py`).
    """
    await session.execute(
        sa.text(
            """
            UPDATE recompute_state SET
                first_requested_at = coalesce(first_requested_at, now()),
                due_at = least(now() + make_interval(secs => :debounce),
                               coalesce(first_requested_at, now())
                                 + make_interval(secs => :max_delay))
            WHERE name = 'rerank'
            """
        ),
        {"debounce": settings.rerank_debounce_s, "max_delay": settings.rerank_max_delay_s},
    )


async def handle_batch(
    session: AsyncSession,
    events: list[CloudEvent],
    settings: Settings,
    *,
    as_of: datetime | None = None,
    incremental: bool = True,
) -> set[uuid.UUID]:
    """The consumer's batch handler: facts, then per-customer lifecycle and churn risk."""
    contracts = parse(events)
    if not contracts:
        return set()
    await request_rerank(session, settings)
    # Not incremental: the re-rank recomputes the touched customers' facts (facts_at null).
    touched = await apply(session, contracts, settings.reporting_currency, stale=not incremental)
    if incremental and touched:
        clock = Clock.at(as_of or await _now(session), settings)
        await refresh_facts(session, clock, touched)
        await lifecycle_and_churn(session, clock, settings, touched)
    return touched


async def _now(session: AsyncSession) -> datetime:
    return (await session.execute(sa.select(sa.func.now()))).scalar_one()
