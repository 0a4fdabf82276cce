"""Queries of the loyalty service (SQLAlchemy Core, set-based); never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.loyalty.models import (
    birthdays,
    coupons,
    draws,
    entries,
    erased_customers,
    idempotency_keys,
    levels,
    lots,
    member_aliases,
    members,
    purchases,
    redemptions,
    rewards,
)
from services.loyalty.rules import Level

Row = Any


# -- members -----------------------------------------------------------------------------------


async def survivor_of(session: AsyncSession, customer_id: uuid.UUID) -> uuid.UUID:
    """The customer a merged duplicate now lives on (itself when never merged)."""
    survivor = await session.scalar(
        sa.select(member_aliases.c.survivor_id).where(member_aliases.c.customer_id == customer_id)
    )
    return survivor or customer_id


async def enrol(
    session: AsyncSession, customer_id: uuid.UUID, now: datetime, via: str, level: str | None
) -> bool:
    """Create the member unless it exists; whether it was created."""
    created = await session.execute(
        insert(members)
        .values(
            customer_id=customer_id,
            level=level,
            level_changed_at=now if level else None,
            evaluated_month=now.strftime("%Y-%m"),
            enrolled_via=via,
            created_at=now,
            # A late event of an erased customer makes an anonymous, erased member.
            erased_at=sa.select(erased_customers.c.erased_at)
            .where(erased_customers.c.customer_id == customer_id)
            .scalar_subquery(),
        )
        .on_conflict_do_nothing()
        .returning(members.c.customer_id)
    )
    return created.first() is not None


async def lock_member(session: AsyncSession, customer_id: uuid.UUID) -> Row | None:
    """The member's row, locked: every change of its balance serialises here."""
    return (
        await session.execute(
            sa.select(members).where(members.c.customer_id == customer_id).with_for_update()
        )
    ).first()


async def member(session: AsyncSession, customer_id: uuid.UUID) -> Row | None:
    return (
        await session.execute(sa.select(members).where(members.c.customer_id == customer_id))
    ).first()


async def set_level(
    session: AsyncSession, customer_id: uuid.UUID, level: str | None, at: datetime
) -> None:
    await session.execute(
        sa.update(members)
        .where(members.c.customer_id == customer_id)
        .values(level=level, level_changed_at=at)
    )


async def add_debt(session: AsyncSession, customer_id: uuid.UUID, points: int) -> None:
    await session.execute(
        sa.update(members)
        .where(members.c.customer_id == customer_id)
        .values(debt=members.c.debt + points)
    )


async def set_tier(session: AsyncSession, customer_id: uuid.UUID, tier: str, at: datetime) -> None:
    """The newest ABC tier wins whatever order the events arrive in."""
    await session.execute(
        sa.update(members)
        .where(
            members.c.customer_id == customer_id,
            sa.or_(members.c.tier_at.is_(None), members.c.tier_at <= at),
        )
        .values(tier=tier, tier_at=at)
    )


# -- levels ------------------------------------------------------------------------------------


async def all_levels(session: AsyncSession) -> list[Level]:
    rows = (await session.execute(sa.select(levels).order_by(levels.c.threshold))).all()
    return [Level(r.code, r.name, r.threshold, Decimal(r.multiplier)) for r in rows]


async def replace_levels(session: AsyncSession, new: Sequence[Level]) -> None:
    await session.execute(sa.delete(levels))
    await session.execute(
        sa.insert(levels),
        [
            {"code": x.code, "name": x.name, "threshold": x.threshold, "multiplier": x.multiplier}
            for x in new
        ],
    )


async def earned_in_window(
    session: AsyncSession, customer_ids: Sequence[uuid.UUID], since: datetime
) -> dict[uuid.UUID, int]:
    """Points earned by purchases since `since`, net of their reversals (not the balance)."""
    rows = await session.execute(
        sa.select(
            purchases.c.customer_id,
            sa.func.sum(purchases.c.points - purchases.c.reversed_points),
        )
        .where(purchases.c.customer_id.in_(customer_ids), purchases.c.occurred_at > since)
        .group_by(purchases.c.customer_id)
    )
    earned = {c: 0 for c in customer_ids}
    earned.update({r[0]: int(r[1] or 0) for r in rows})
    return earned


# -- purchases ---------------------------------------------------------------------------------


async def record_purchase(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Store a purchase once (unique on its id); whether this call stored it."""
    stored = await session.execute(
        insert(purchases)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(purchases.c.purchase_id)
    )
    return stored.first() is not None


async def lock_purchase(session: AsyncSession, purchase_id: uuid.UUID) -> Row | None:
    return (
        await session.execute(
            sa.select(purchases).where(purchases.c.purchase_id == purchase_id).with_for_update()
        )
    ).first()


async def update_purchase(session: AsyncSession, purchase_id: uuid.UUID, **values: Any) -> None:
    await session.execute(
        sa.update(purchases).where(purchases.c.purchase_id == purchase_id).values(**values)
    )


# -- lots and the ledger -----------------------------------------------------------------------


async def add_lot(session: AsyncSession, **values: Any) -> int:
    lot_id = await session.scalar(
        sa.insert(lots).values(remaining=values["points"], **values).returning(lots.c.id)
    )
    assert lot_id is not None
    return int(lot_id)


async def add_entry(session: AsyncSession, **values: Any) -> int | None:
    """Append a ledger entry; None when its source (event, purchase, refund) is already in."""
    entry_id = await session.scalar(
        insert(entries).values(**values).on_conflict_do_nothing().returning(entries.c.id)
    )
    return int(entry_id) if entry_id is not None else None


async def add_draws(session: AsyncSession, entry_id: int, taken: Sequence[tuple[int, int]]) -> None:
    if taken:
        await session.execute(
            sa.insert(draws),
            [{"entry_id": entry_id, "lot_id": lot, "points": points} for lot, points in taken],
        )


@dataclass(frozen=True)
class Take:
    lot_id: int
    points: int
    start: int  # the points drawn before this lot's, in drawing order


async def draw(
    session: AsyncSession,
    customer_id: uuid.UUID,
    need: int,
    now: datetime,
    *,
    only_available: bool,
    first_lot: int | None = None,
) -> list[Take]:
    """Take up to `need` points from the member's open lots in one statement: `first_lot`
    first, then the soonest-expiring. The caller holds the member's lock."""
    if need <= 0:
        return []
    spendable = [lots.c.customer_id == customer_id, lots.c.remaining > 0, lots.c.expires_at > now]
    if only_available:
        spendable.append(lots.c.available_at <= now)
    order: list[Any] = [lots.c.expires_at, lots.c.id]
    if first_lot is not None:
        order.insert(0, sa.case((lots.c.id == first_lot, 0), else_=1))
    running = sa.func.sum(lots.c.remaining).over(order_by=order)
    ordered = (
        sa.select(lots.c.id, lots.c.remaining, (running - lots.c.remaining).label("start"))
        .where(*spendable)
        .cte("ordered")
    )
    takes = (
        sa.select(
            ordered.c.id,
            ordered.c.start,
            sa.func.least(ordered.c.remaining, need - ordered.c.start).label("take"),
        )
        .where(ordered.c.start < need)
        .cte("takes")
    )
    rows = await session.execute(
        sa.update(lots)
        .where(lots.c.id == takes.c.id)
        .values(remaining=lots.c.remaining - takes.c.take)
        .returning(lots.c.id, takes.c.take, takes.c.start)
    )
    return sorted((Take(r.id, int(r.take), int(r.start)) for r in rows), key=lambda t: t.start)


async def give_back(session: AsyncSession, taken: Sequence[tuple[int, int]]) -> None:
    """Return drawn points to their lots (one statement)."""
    if not taken:
        return
    given = sa.values(
        sa.column("lot_id", sa.BigInteger), sa.column("points", sa.Integer), name="given"
    ).data(list(taken))
    await session.execute(
        sa.update(lots)
        .where(lots.c.id == given.c.lot_id)
        .values(remaining=lots.c.remaining + given.c.points)
    )


async def draws_of(session: AsyncSession, entry_id: int) -> list[tuple[int, int]]:
    rows = await session.execute(
        sa.select(draws.c.lot_id, draws.c.points).where(draws.c.entry_id == entry_id)
    )
    return [(r.lot_id, r.points) for r in rows]


@dataclass(frozen=True)
class Balance:
    available: int
    pending: int
    debt: int

    @property
    def spendable(self) -> int:
        return self.available - self.debt


async def balance(
    session: AsyncSession, customer_id: uuid.UUID, debt: int, now: datetime
) -> Balance:
    row = (
        await session.execute(
            sa.select(
                sa.func.coalesce(
                    sa.func.sum(lots.c.remaining).filter(lots.c.available_at <= now), 0
                ),
                sa.func.coalesce(
                    sa.func.sum(lots.c.remaining).filter(lots.c.available_at > now), 0
                ),
            ).where(
                lots.c.customer_id == customer_id, lots.c.remaining > 0, lots.c.expires_at > now
            )
        )
    ).one()
    return Balance(int(row[0]), int(row[1]), debt)


async def ledger_total(session: AsyncSession, customer_id: uuid.UUID) -> int:
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(entries.c.points), 0)).where(
            entries.c.customer_id == customer_id
        )
    )
    return int(total or 0)


async def ledger_page(
    session: AsyncSession, customer_id: uuid.UUID, after: int, limit: int
) -> list[Row]:
    return list(
        (
            await session.execute(
                sa.select(entries)
                .where(entries.c.customer_id == customer_id, entries.c.id > after)
                .order_by(entries.c.id)
                .limit(limit + 1)
            )
        ).all()
    )


async def open_lots(session: AsyncSession, customer_id: uuid.UUID, now: datetime) -> list[Row]:
    return list(
        (
            await session.execute(
                sa.select(lots)
                .where(
                    lots.c.customer_id == customer_id,
                    lots.c.remaining > 0,
                    lots.c.expires_at > now,
                )
                .order_by(lots.c.expires_at, lots.c.id)
            )
        ).all()
    )


# -- rewards, redemptions, coupons -------------------------------------------------------------


async def reward(session: AsyncSession, code: str, *, lock: bool = False) -> Row | None:
    query = sa.select(rewards).where(rewards.c.code == code)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def all_rewards(session: AsyncSession, active_only: bool) -> list[Row]:
    query = sa.select(rewards).order_by(rewards.c.code)
    if active_only:
        query = query.where(rewards.c.active)
    return list((await session.execute(query)).all())


async def put_reward(session: AsyncSession, values: dict[str, Any], existing: Row | None) -> Row:
    stmt: Any
    if existing is None:
        stmt = sa.insert(rewards).values(**values, version=1).returning(rewards)
    else:
        stmt = (
            sa.update(rewards)
            .where(rewards.c.code == values["code"])
            .values(**values, version=rewards.c.version + 1)
            .returning(rewards)
        )
    return (await session.execute(stmt)).one()


async def change_stock(session: AsyncSession, code: str, delta: int) -> None:
    await session.execute(
        sa.update(rewards)
        .where(rewards.c.code == code, rewards.c.stock.is_not(None))
        .values(stock=rewards.c.stock + delta)
    )


async def redemptions_of_reward(session: AsyncSession, customer_id: uuid.UUID, code: str) -> int:
    count = await session.scalar(
        sa.select(sa.func.count()).where(
            redemptions.c.customer_id == customer_id,
            redemptions.c.reward_code == code,
            redemptions.c.status == "completed",
        )
    )
    return int(count or 0)


async def add_redemption(session: AsyncSession, **values: Any) -> Row:
    return (
        await session.execute(sa.insert(redemptions).values(**values).returning(redemptions))
    ).one()


async def redemption(
    session: AsyncSession, redemption_id: uuid.UUID, *, lock: bool = False
) -> Row | None:
    query = sa.select(redemptions).where(redemptions.c.id == redemption_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def redemptions_page(
    session: AsyncSession, customer_id: uuid.UUID | None, limit: int, before: datetime | None
) -> list[Row]:
    query = sa.select(redemptions).order_by(redemptions.c.created_at.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(redemptions.c.customer_id == customer_id)
    if before is not None:
        query = query.where(redemptions.c.created_at < before)
    return list((await session.execute(query)).all())


async def cancel_redemption(session: AsyncSession, redemption_id: uuid.UUID, at: datetime) -> Row:
    return (
        await session.execute(
            sa.update(redemptions)
            .where(redemptions.c.id == redemption_id)
            .values(status="cancelled", cancelled_at=at)
            .returning(redemptions)
        )
    ).one()


async def add_coupon(session: AsyncSession, **values: Any) -> None:
    await session.execute(sa.insert(coupons).values(**values))


async def coupon(session: AsyncSession, code: str, *, lock: bool = False) -> Row | None:
    query = sa.select(coupons).where(coupons.c.code == code)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def set_coupon(session: AsyncSession, code: str, **values: Any) -> Row:
    return (
        await session.execute(
            sa.update(coupons).where(coupons.c.code == code).values(**values).returning(coupons)
        )
    ).one()


# -- birthdays and erasure ---------------------------------------------------------------------


async def birthday(session: AsyncSession, customer_id: uuid.UUID) -> Row | None:
    return (
        await session.execute(sa.select(birthdays).where(birthdays.c.customer_id == customer_id))
    ).first()


async def put_birthday(
    session: AsyncSession, customer_id: uuid.UUID, month_day: str, index: str, at: datetime
) -> None:
    """Store the birthday; a changed date counts as entered now (`entered_at`)."""
    stmt = insert(birthdays).values(
        customer_id=customer_id, month_day=month_day, day_index=index, entered_at=at
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[birthdays.c.customer_id],
            set_={
                "month_day": stmt.excluded.month_day,
                "day_index": stmt.excluded.day_index,
                "entered_at": stmt.excluded.entered_at,
            },
            where=birthdays.c.day_index != stmt.excluded.day_index,
        )
    )


async def drop_birthday(session: AsyncSession, customer_id: uuid.UUID) -> None:
    await session.execute(sa.delete(birthdays).where(birthdays.c.customer_id == customer_id))


async def erased_at(session: AsyncSession, customer_id: uuid.UUID) -> datetime | None:
    return await session.scalar(
        sa.select(erased_customers.c.erased_at).where(erased_customers.c.customer_id == customer_id)
    )


async def mark_erased(session: AsyncSession, customer_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        insert(erased_customers)
        .values(customer_id=customer_id, erased_at=at)
        .on_conflict_do_nothing()
    )
    await session.execute(
        sa.update(members)
        .where(members.c.customer_id == customer_id, members.c.erased_at.is_(None))
        .values(erased_at=at)
    )
    await drop_birthday(session, customer_id)
    # Stored Idempotency-Key replies about the customer go too.
    await session.execute(
        sa.delete(idempotency_keys).where(
            idempotency_keys.c.body["customer_id"].astext == str(customer_id)
        )
    )


# -- merge -------------------------------------------------------------------------------------


async def move_customer(session: AsyncSession, duplicate: uuid.UUID, survivor: uuid.UUID) -> None:
    """Everything of the duplicate now belongs to the survivor; later events follow."""
    for table in (lots, entries, purchases, redemptions, coupons):
        await session.execute(
            sa.update(table).where(table.c.customer_id == duplicate).values(customer_id=survivor)
        )
    await session.execute(
        sa.update(member_aliases)
        .where(member_aliases.c.survivor_id == duplicate)
        .values(survivor_id=survivor)
    )
    await session.execute(
        insert(member_aliases)
        .values(customer_id=duplicate, survivor_id=survivor)
        .on_conflict_do_update(
            index_elements=[member_aliases.c.customer_id], set_={"survivor_id": survivor}
        )
    )
    await drop_birthday(session, duplicate)
    await session.execute(sa.delete(members).where(members.c.customer_id == duplicate))


# -- reports -----------------------------------------------------------------------------------


async def liability(session: AsyncSession, now: datetime) -> tuple[int, int, int, list[Row]]:
    """Outstanding points (available, pending), owed points, and open points by expiry month."""
    open_lots_ = sa.and_(lots.c.remaining > 0, lots.c.expires_at > now)
    totals = (
        await session.execute(
            sa.select(
                sa.func.coalesce(
                    sa.func.sum(lots.c.remaining).filter(lots.c.available_at <= now), 0
                ),
                sa.func.coalesce(
                    sa.func.sum(lots.c.remaining).filter(lots.c.available_at > now), 0
                ),
            ).where(open_lots_)
        )
    ).one()
    debt = await session.scalar(sa.select(sa.func.coalesce(sa.func.sum(members.c.debt), 0)))
    # A lot expiring at 2027-04-01T00:00Z expires at the end of March 2027.
    month = sa.func.to_char(
        sa.func.timezone("UTC", lots.c.expires_at) - sa.text("interval '1 microsecond'"), "YYYY-MM"
    ).label("month")
    by_month = (
        await session.execute(
            sa.select(month, sa.func.sum(lots.c.remaining).label("points"))
            .where(open_lots_)
            .group_by(month)
            .order_by(month)
        )
    ).all()
    return int(totals[0]), int(totals[1]), int(debt or 0), list(by_month)


# -- GDPR --------------------------------------------------------------------------------------


async def holdings(
    session: AsyncSession, customer_id: uuid.UUID
) -> dict[str, list[dict[str, Any]]]:
    """Every row the service keeps about the customer, by table, oldest first."""
    tables = {
        "member": (members, members.c.created_at),
        "purchases": (purchases, purchases.c.occurred_at),
        "lots": (lots, lots.c.id),
        "ledger": (entries, entries.c.id),
        "redemptions": (redemptions, redemptions.c.created_at),
        "coupons": (coupons, coupons.c.issued_at),
        "birthday": (birthdays, birthdays.c.customer_id),
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for name, (table, order) in tables.items():
        rows = await session.execute(
            sa.select(table).where(table.c.customer_id == customer_id).order_by(order)
        )
        found[name] = [dict(r._mapping) for r in rows]
    return found


async def holds_anything(session: AsyncSession, customer_id: uuid.UUID) -> bool:
    for table in (members, birthdays, entries):
        if await session.scalar(
            sa.select(sa.literal(True)).where(table.c.customer_id == customer_id).limit(1)
        ):
            return True
    return False
