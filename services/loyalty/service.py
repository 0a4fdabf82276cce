"""Business rules of the loyalty service: they change state and emit events in the caller's
transaction (a request, a consumed event or a job run; one commit point each).

Every change of a member's points first locks the member's row (`SELECT ... FOR UPDATE`), so
concurrent redemptions, earnings, reversals and expiries of one member run one after another
and a redemption can never spend points another one already took.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

import sqlalchemy as sa
from prometheus_client import Counter

from services.loyalty import repository as repo
from services.loyalty import rules
from services.loyalty.config import Settings
from services.loyalty.errors import (
    CouponAlreadyUsed,
    CouponNotFound,
    CouponNotUsable,
    CustomerErased,
    InsufficientPoints,
    InvalidLevels,
    MemberNotFound,
    RedemptionAlreadyCancelled,
    RedemptionNotFound,
    RewardLimitReached,
    RewardNotFound,
    RewardUnavailable,
)
from services.loyalty.models import birthdays, entries, lots, members
from services.loyalty.rules import Level
from services.loyalty.schemas import (
    AdjustmentCreate,
    BalanceRead,
    CouponRead,
    EntryRead,
    ExpiringMonth,
    Ledger,
    LevelIn,
    LiabilityReport,
    LotRead,
    MemberRead,
    RedemptionCreate,
    RedemptionRead,
    RewardPut,
    RewardRead,
)
from shared.context import RequestContext
from shared.contracts.customers import ImportantDate
from shared.contracts.interactions import PurchaseRecorded
from shared.contracts.loyalty import (
    LevelChanged,
    PointsEarned,
    PointsExpired,
    PointsExpiring,
    PointsRedeemed,
    PointsReversed,
    RedemptionCancelled,
)
from shared.crypto import blind_index
from shared.http import check_if_match
from shared.pagination import InvalidCursor, decode_cursor, encode_cursor

logger = logging.getLogger("kehu.loyalty")
SKIPPED = Counter(
    "kehu_loyalty_skipped_events_total",
    "Consumed events that earned or reversed no points, by reason",
    ["reason"],
)
BIRTHDAY_INDEX = "loyalty.birthday"


def _settings(ctx: RequestContext) -> Settings:
    return cast(Settings, ctx.settings)


def _skip(reason: str, detail: str, **facts: Any) -> None:
    SKIPPED.labels(reason).inc()
    logger.info("loyalty: skipped (%s): %s", reason, detail, extra={"facts": facts})


# -- members -----------------------------------------------------------------------------------


async def _base_level(ctx: RequestContext) -> str | None:
    base = rules.qualifying_level(await repo.all_levels(ctx.session), 0)
    return base.code if base else None


async def enrol(ctx: RequestContext, customer_id: uuid.UUID) -> tuple[MemberRead, bool]:
    """Make the customer a member (once); the member and whether it is new."""
    session = ctx.session
    customer_id = await repo.survivor_of(session, customer_id)
    if await repo.erased_at(session, customer_id) is not None:
        raise CustomerErased(f"Customer {customer_id} was erased; it cannot be enrolled")
    created = await repo.enrol(session, customer_id, ctx.now(), "api", await _base_level(ctx))
    if created:
        await ctx.audit_change("create", "member", customer_id, customer_id)
    return await read_member(ctx, customer_id), created


async def read_member(ctx: RequestContext, customer_id: uuid.UUID) -> MemberRead:
    session = ctx.session
    customer_id = await repo.survivor_of(session, customer_id)
    m = await repo.member(session, customer_id)
    if m is None:
        raise MemberNotFound(f"Customer {customer_id} is not a member")
    now = ctx.now()
    balance = await repo.balance(session, customer_id, m.debt, now)
    since = now - timedelta(days=_settings(ctx).level_window_days)
    earned = (await repo.earned_in_window(session, [customer_id], since))[customer_id]
    bday = await repo.birthday(session, customer_id)
    read = MemberRead(
        customer_id=customer_id,
        level=m.level,
        level_changed_at=m.level_changed_at,
        earned_in_window=earned,
        balance=_balance(balance),
        tier=m.tier,
        birthday=bday.month_day if bday else None,
        enrolled_via=m.enrolled_via,
        created_at=m.created_at,
        erased_at=m.erased_at,
    )
    await ctx.audit_reads([("member", {"id": customer_id, "birthday": read.birthday}, customer_id)])
    return cast(MemberRead, ctx.mask("member", read))


def _balance(b: repo.Balance) -> BalanceRead:
    return BalanceRead(available=b.available, pending=b.pending, debt=b.debt, spendable=b.spendable)


async def ledger(
    ctx: RequestContext, customer_id: uuid.UUID, cursor: str | None, limit: int
) -> Ledger:
    """A page of the member's entries with the balance they explain."""
    session = ctx.session
    customer_id = await repo.survivor_of(session, customer_id)
    m = await repo.member(session, customer_id)
    if m is None:
        raise MemberNotFound(f"Customer {customer_id} is not a member")
    now = ctx.now()
    try:
        after = int((decode_cursor(cursor) or {}).get("id", 0))
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("The cursor is not one this API issued for this ledger") from exc
    rows = await repo.ledger_page(session, customer_id, after, limit)
    items = rows[:limit]
    next_cursor = encode_cursor({"id": items[-1].id}) if len(rows) > limit else None
    return Ledger(
        customer_id=customer_id,
        items=[EntryRead.model_validate(r, from_attributes=True) for r in items],
        next_cursor=next_cursor,
        entries_total=await repo.ledger_total(session, customer_id),
        balance=_balance(await repo.balance(session, customer_id, m.debt, now)),
        lots=[_lot(r, now) for r in await repo.open_lots(session, customer_id, now)],
    )


def _lot(row: Any, now: datetime) -> LotRead:
    return LotRead(
        id=row.id,
        source=row.source,
        source_id=row.source_id,
        points=row.points,
        remaining=row.remaining,
        earned_at=row.earned_at,
        available_at=row.available_at,
        expires_at=row.expires_at,
        status="available" if row.available_at <= now else "pending",
    )


async def adjust(ctx: RequestContext, customer_id: uuid.UUID, body: AdjustmentCreate) -> MemberRead:
    """A manual correction: a credit is a new lot, spendable at once; a debit takes available
    points (soonest-expiring first) and never more than the spendable balance."""
    session, s, now = ctx.session, _settings(ctx), ctx.now()
    customer_id = await repo.survivor_of(session, customer_id)
    member = await repo.lock_member(session, customer_id)
    if member is None:
        raise MemberNotFound(f"Customer {customer_id} is not a member")
    details = {"reference": body.reference} if body.reference else {}
    if body.points > 0:
        lot_id = await repo.add_lot(
            session,
            customer_id=customer_id,
            source="adjustment",
            source_id=body.reference or body.reason,
            points=body.points,
            earned_at=now,
            available_at=now,
            expires_at=rules.expires_at(now, s.expiry_months),
        )
        await repo.add_entry(
            session,
            customer_id=customer_id,
            at=now,
            kind="adjust",
            points=body.points,
            reason=body.reason,
            source_id=body.reference,
            lot_id=lot_id,
            details=details,
        )
    else:
        wanted = -body.points
        balance = await repo.balance(session, customer_id, member.debt, now)
        if balance.spendable < wanted:
            raise InsufficientPoints(
                f"The adjustment takes {wanted} points; {balance.spendable} are spendable",
                spendable=balance.spendable,
                needed=wanted,
            )
        taken = await repo.draw(
            session, customer_id, member.debt + wanted, now, only_available=True
        )
        if member.debt:
            await repo.add_debt(session, customer_id, -member.debt)
        entry_id = await repo.add_entry(
            session,
            customer_id=customer_id,
            at=now,
            kind="adjust",
            points=body.points,
            reason=body.reason,
            source_id=body.reference,
            details=details,
        )
        assert entry_id is not None
        await repo.add_draws(session, entry_id, _portion(taken, member.debt, member.debt + wanted))
    await ctx.audit_change("update", "member", customer_id, customer_id, ["points"])
    return await read_member(ctx, customer_id)


# -- levels ------------------------------------------------------------------------------------


async def put_levels(ctx: RequestContext, wanted: list[LevelIn]) -> list[Level]:
    codes = [x.code for x in wanted]
    thresholds = [x.threshold for x in wanted]
    if len(set(codes)) != len(codes):
        raise InvalidLevels("Level codes must be unique")
    if len(set(thresholds)) != len(thresholds):
        raise InvalidLevels("Level thresholds must be unique")
    if 0 not in thresholds:
        raise InvalidLevels("One level needs threshold 0: every member has a level")
    new = rules.ordered([Level(x.code, x.name, x.threshold, x.multiplier) for x in wanted])
    await repo.replace_levels(ctx.session, new)
    await ctx.audit_change("update", "levels", ",".join(codes))
    return new


async def _raise_level(
    ctx: RequestContext, customer_id: uuid.UUID, current: str | None, levels: list[Level]
) -> str | None:
    """Upgrade at once when the points earned in the window reach a higher level."""
    since = ctx.now() - timedelta(days=_settings(ctx).level_window_days)
    earned = (await repo.earned_in_window(ctx.session, [customer_id], since))[customer_id]
    target = rules.qualifying_level(levels, earned)
    if target is None or rules.rank_of(levels, target.code) <= rules.rank_of(levels, current):
        return current
    await _change_level(ctx, customer_id, current, target.code, "up", earned)
    return target.code


async def _change_level(
    ctx: RequestContext,
    customer_id: uuid.UUID,
    previous: str | None,
    level: str,
    direction: Literal["up", "down"],
    earned: int,
) -> None:
    now = ctx.now()
    await repo.set_level(ctx.session, customer_id, level, now)
    await ctx.outbox.emit(
        ctx.session,
        LevelChanged(
            customer_id=customer_id,
            occurred_at=now,
            level=level,
            previous_level=previous,
            direction=direction,
            earned_in_window=max(0, earned),
        ),
    )


# -- earning and reversal (consumed events) ----------------------------------------------------


async def earn_purchase(ctx: RequestContext, event_id: str, e: PurchaseRecorded) -> None:
    """A purchase earns floor(amount in the reporting currency x points per unit x level
    multiplier), pending through the return window. A purchase counts once, whatever the broker
    redelivers."""
    session, s, now = ctx.session, _settings(ctx), ctx.now()
    # Interactions converts a purchase in another currency when it records it.
    earning, currency = e.amount, e.currency
    if e.reporting_amount is not None and e.reporting_currency is not None:
        earning, currency = e.reporting_amount, e.reporting_currency
    customer_id = await repo.survivor_of(session, e.customer_id)
    purchase = {
        "purchase_id": e.purchase_id,
        "customer_id": customer_id,
        "amount": e.amount,
        "currency": e.currency,
        "occurred_at": e.occurred_at,
    }
    if currency != s.currency:
        # Neither the purchase nor its converted amount is in the points currency.
        _skip(
            "currency",
            f"purchase {e.purchase_id} is in {currency}, points are earned in {s.currency}",
            purchase_id=str(e.purchase_id),
        )
        await repo.record_purchase(
            session,
            {
                **purchase,
                "points": 0,
                "multiplier": 0,
                "skipped_reason": f"currency {currency} is not {s.currency}",
            },
        )
        return
    levels = await repo.all_levels(session)
    base = rules.qualifying_level(levels, 0)
    await repo.enrol(session, customer_id, now, "purchase", base.code if base else None)
    member = await repo.lock_member(session, customer_id)
    assert member is not None
    level = next((x for x in levels if x.code == member.level), None)
    multiplier = level.multiplier if level else Decimal(1)
    points = rules.points_for(earning, s.points_per_unit, multiplier)
    if not await repo.record_purchase(
        session, {**purchase, "points": points, "multiplier": multiplier}
    ):
        _skip("duplicate", f"purchase {e.purchase_id} was already counted")
        return
    if points > 0:
        available_at = e.occurred_at + timedelta(days=s.return_window_days)
        expires = rules.expires_at(e.occurred_at, s.expiry_months)
        lot_id = await repo.add_lot(
            session,
            customer_id=customer_id,
            source="purchase",
            source_id=str(e.purchase_id),
            points=points,
            earned_at=e.occurred_at,
            available_at=available_at,
            expires_at=expires,
        )
        await repo.update_purchase(session, e.purchase_id, lot_id=lot_id)
        await repo.add_entry(
            session,
            customer_id=customer_id,
            at=now,
            kind="earn",
            points=points,
            reason="purchase",
            source_id=str(e.purchase_id),
            source_event_id=event_id,
            lot_id=lot_id,
            details={
                "amount": format(earning, "f"),
                "currency": currency,
                "multiplier": format(multiplier, "f"),
                "level": member.level,
            },
        )
        await ctx.outbox.emit(
            session,
            PointsEarned(
                customer_id=customer_id,
                occurred_at=now,
                points=points,
                source="purchase",
                source_id=str(e.purchase_id),
                level=member.level,
                available_at=available_at,
                expires_at=expires,
            ),
        )
    await _raise_level(ctx, customer_id, member.level, levels)


async def reverse_purchase(
    ctx: RequestContext,
    event_id: str,
    purchase_id: uuid.UUID,
    *,
    refund_id: uuid.UUID | None = None,
    refund_amount: Decimal | None = None,
) -> None:
    """A refund takes back its share of the purchase's points, a cancellation (no `refund_id`)
    all of them: from the purchase's own lot first, then the soonest-expiring lots. What no lot
    covers is owed (balance below zero) when allowed, else written off; the entry says which."""
    session, s, now = ctx.session, _settings(ctx), ctx.now()
    known = await repo.lock_purchase(session, purchase_id)
    if known is None:
        _skip(
            "unknown_purchase",
            f"no purchase {purchase_id} to reverse",
            purchase_id=str(purchase_id),
        )
        return
    if known.points == 0:
        return  # it earned nothing (another currency, a zero amount): nothing to take back
    customer_id = known.customer_id
    member = await repo.lock_member(session, customer_id)
    assert member is not None
    cancellation = refund_id is None
    source_id = f"cancel:{purchase_id}" if cancellation else str(refund_id)
    already = await session.scalar(
        sa.select(entries.c.id).where(entries.c.kind == "reverse", entries.c.source_id == source_id)
    )
    if already is not None or known.cancelled:
        _skip("duplicate", f"reversal {source_id} was already applied")
        return
    refunded = (
        known.amount
        if cancellation
        else min(known.amount, known.refunded_amount + (refund_amount or 0))
    )
    target = rules.reversal_target(known.points, refunded, known.amount)
    need = max(0, target - known.reversed_points)
    await repo.update_purchase(
        session,
        purchase_id,
        refunded_amount=refunded,
        reversed_points=max(target, known.reversed_points),
        cancelled=cancellation,
    )
    taken = await repo.draw(
        session, customer_id, need, now, only_available=False, first_lot=known.lot_id
    )
    covered = sum(t.points for t in taken)
    uncovered = need - covered
    negative = uncovered > 0 and s.negative_balance_allowed
    if negative:
        await repo.add_debt(session, customer_id, uncovered)
    points = covered + (uncovered if negative else 0)
    entry_id = await repo.add_entry(
        session,
        customer_id=customer_id,
        at=now,
        kind="reverse",
        points=-points,
        reason="cancellation" if cancellation else "refund",
        source_id=source_id,
        source_event_id=event_id,
        lot_id=known.lot_id,
        uncovered=uncovered,
        negative=negative,
        details={
            "purchase_id": str(purchase_id),
            "refunded_amount": format(refunded, "f"),
            "purchase_amount": format(known.amount, "f"),
            "written_off": 0 if negative else uncovered,
        },
    )
    assert entry_id is not None
    await repo.add_draws(session, entry_id, [(t.lot_id, t.points) for t in taken])
    await ctx.outbox.emit(
        session,
        PointsReversed(
            customer_id=customer_id,
            occurred_at=now,
            purchase_id=purchase_id,
            reason="cancellation" if cancellation else "refund",
            points=points,
            uncovered=uncovered,
            negative=negative,
        ),
    )


# -- redemptions -------------------------------------------------------------------------------


def _usable(reward: Any, now: datetime) -> str | None:
    """Why the reward cannot be redeemed now (None: it can)."""
    if not reward.active:
        return "it is not active"
    if reward.valid_from is not None and now < reward.valid_from:
        return f"it is valid from {reward.valid_from.isoformat()}"
    if reward.valid_until is not None and now >= reward.valid_until:
        return f"it was valid until {reward.valid_until.isoformat()}"
    if reward.stock is not None and reward.stock <= 0:
        return "it is out of stock"
    return None


def _coupon_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes
    return "LY-" + "".join(secrets.choice(alphabet) for _ in range(12))


async def redeem(ctx: RequestContext, body: RedemptionCreate) -> RedemptionRead:
    """All or nothing: the member's lock serialises redemptions, so none overspends."""
    session, now = ctx.session, ctx.now()
    customer_id = await repo.survivor_of(session, body.customer_id)
    member = await repo.lock_member(session, customer_id)
    if member is None:
        raise MemberNotFound(f"Customer {customer_id} is not a member")
    if member.erased_at is not None:
        raise CustomerErased(f"Customer {customer_id} was erased")
    reward = None
    cost = body.points or 0
    if body.reward_code is not None:
        reward = await repo.reward(session, body.reward_code, lock=True)
        if reward is None:
            raise RewardNotFound(f"No reward {body.reward_code}")
        why = _usable(reward, now)
        if why:
            raise RewardUnavailable(f"Reward {reward.code} cannot be redeemed: {why}")
        limit = reward.per_customer_limit
        if (
            limit is not None
            and await repo.redemptions_of_reward(session, customer_id, reward.code) >= limit
        ):
            raise RewardLimitReached(
                f"Customer {customer_id} already redeemed {reward.code} {limit} time(s)",
                limit=limit,
            )
        cost = reward.points_cost
    balance = await repo.balance(session, customer_id, member.debt, now)
    if balance.spendable < cost:
        raise InsufficientPoints(
            f"The redemption needs {cost} points; {balance.spendable} are spendable",
            spendable=balance.spendable,
            needed=cost,
        )
    # Points owed from earlier reversals are settled first, from the same lots.
    taken = await repo.draw(session, customer_id, member.debt + cost, now, only_available=True)
    spent = _portion(taken, member.debt, member.debt + cost)
    if member.debt:
        await repo.add_debt(session, customer_id, -member.debt)
    redemption_id = uuid.uuid4()
    entry_id = await repo.add_entry(
        session,
        customer_id=customer_id,
        at=now,
        kind="redeem",
        points=-cost,
        reason=f"reward {reward.code}" if reward is not None else "points",
        source_id=str(redemption_id),
        redemption_id=redemption_id,
        details={"settled_debt": member.debt} if member.debt else {},
    )
    assert entry_id is not None
    await repo.add_draws(session, entry_id, spent)
    coupon_code = None
    if reward is not None:
        await repo.change_stock(session, reward.code, -1)
        if reward.kind == "coupon":
            coupon_code = _coupon_code()
    row = await repo.add_redemption(
        session,
        id=redemption_id,
        customer_id=customer_id,
        reward_code=reward.code if reward is not None else None,
        points=cost,
        status="completed",
        entry_id=entry_id,
        coupon_code=coupon_code,
        created_at=now,
    )
    if coupon_code is not None and reward is not None:
        valid_days = reward.coupon_valid_days
        await repo.add_coupon(
            session,
            code=coupon_code,
            redemption_id=redemption_id,
            customer_id=customer_id,
            reward_code=reward.code,
            status="issued",
            issued_at=now,
            valid_until=now + timedelta(days=valid_days) if valid_days else None,
        )
    await ctx.outbox.emit(
        session,
        PointsRedeemed(
            customer_id=customer_id,
            occurred_at=now,
            redemption_id=redemption_id,
            points=cost,
            reward_code=reward.code if reward is not None else None,
        ),
    )
    await ctx.audit_change("create", "redemption", redemption_id, customer_id)
    return await _redemption(ctx, row)


def _portion(taken: list[repo.Take], start: int, end: int) -> list[tuple[int, int]]:
    """The (lot, points) of the drawn points that fall between `start` and `end` in order."""
    portion = []
    for t in taken:
        lo, hi = max(t.start, start), min(t.start + t.points, end)
        if hi > lo:
            portion.append((t.lot_id, hi - lo))
    return portion


async def _redemption(ctx: RequestContext, row: Any) -> RedemptionRead:
    coupon = await repo.coupon(ctx.session, row.coupon_code) if row.coupon_code else None
    return RedemptionRead(
        id=row.id,
        customer_id=row.customer_id,
        reward_code=row.reward_code,
        points=row.points,
        status=row.status,
        coupon=CouponRead.model_validate(coupon, from_attributes=True) if coupon else None,
        created_at=row.created_at,
        cancelled_at=row.cancelled_at,
    )


async def read_redemption(ctx: RequestContext, redemption_id: uuid.UUID) -> RedemptionRead:
    row = await repo.redemption(ctx.session, redemption_id)
    if row is None:
        raise RedemptionNotFound(f"No redemption {redemption_id}")
    return await _redemption(ctx, row)


async def cancel_redemption(ctx: RequestContext, redemption_id: uuid.UUID) -> RedemptionRead:
    """Give the points back to the lots they were drawn from; its coupon becomes void."""
    session, now = ctx.session, ctx.now()
    found = await repo.redemption(session, redemption_id)
    if found is None:
        raise RedemptionNotFound(f"No redemption {redemption_id}")
    await repo.lock_member(session, found.customer_id)
    row = await repo.redemption(session, redemption_id, lock=True)
    assert row is not None
    if row.status == "cancelled":
        raise RedemptionAlreadyCancelled(f"Redemption {redemption_id} was already cancelled")
    if row.coupon_code is not None:
        coupon = await repo.coupon(session, row.coupon_code, lock=True)
        if coupon is not None and coupon.status == "used":
            raise CouponAlreadyUsed(
                f"Coupon {row.coupon_code} of this redemption was used; it cannot be cancelled"
            )
        await repo.set_coupon(session, row.coupon_code, status="void")
    taken = await repo.draws_of(session, row.entry_id)
    await repo.give_back(session, taken)
    entry_id = await repo.add_entry(
        session,
        customer_id=row.customer_id,
        at=now,
        kind="restore",
        points=row.points,
        reason="redemption cancelled",
        source_id=str(redemption_id),
        redemption_id=redemption_id,
    )
    assert entry_id is not None
    await repo.add_draws(session, entry_id, taken)
    if row.reward_code is not None:
        await repo.change_stock(session, row.reward_code, +1)
    row = await repo.cancel_redemption(session, redemption_id, now)
    await ctx.outbox.emit(
        session,
        RedemptionCancelled(
            customer_id=row.customer_id,
            occurred_at=now,
            redemption_id=redemption_id,
            points=row.points,
        ),
    )
    await ctx.audit_change("update", "redemption", redemption_id, row.customer_id, ["status"])
    return await _redemption(ctx, row)


# -- rewards and coupons -----------------------------------------------------------------------


async def put_reward(
    ctx: RequestContext, code: str, body: RewardPut, if_match: str | None
) -> tuple[RewardRead, bool]:
    """Create the reward, or replace it (`If-Match` required); it and whether it is new."""
    existing = await repo.reward(ctx.session, code, lock=True)
    if existing is not None:
        check_if_match(if_match, existing.version)
    row = await repo.put_reward(
        ctx.session, {"code": code, **body.model_dump(), "updated_at": ctx.now()}, existing
    )
    await ctx.audit_change("create" if existing is None else "update", "reward", code)
    return RewardRead.model_validate(row, from_attributes=True), existing is None


async def read_reward(ctx: RequestContext, code: str) -> RewardRead:
    row = await repo.reward(ctx.session, code)
    if row is None:
        raise RewardNotFound(f"No reward {code}")
    return RewardRead.model_validate(row, from_attributes=True)


async def read_coupon(ctx: RequestContext, code: str) -> CouponRead:
    row = await repo.coupon(ctx.session, code)
    if row is None:
        raise CouponNotFound(f"No coupon {code}")
    return CouponRead.model_validate(row, from_attributes=True)


async def use_coupon(ctx: RequestContext, code: str) -> CouponRead:
    """Mark the coupon used: once; a second use is a 409."""
    now = ctx.now()
    row = await repo.coupon(ctx.session, code, lock=True)
    if row is None:
        raise CouponNotFound(f"No coupon {code}")
    if row.status == "used":
        raise CouponAlreadyUsed(f"Coupon {code} was used at {row.used_at.isoformat()}")
    if row.status == "void":
        raise CouponNotUsable(f"Coupon {code} is void (its redemption was cancelled)")
    if row.valid_until is not None and now >= row.valid_until:
        raise CouponNotUsable(f"Coupon {code} expired at {row.valid_until.isoformat()}")
    row = await repo.set_coupon(ctx.session, code, status="used", used_at=now)
    await ctx.audit_change("update", "coupon", code, row.customer_id, ["status"])
    return CouponRead.model_validate(row, from_attributes=True)


# -- customers: important dates, tiers, merges, erasure ----------------------------------------


async def important_dates(
    ctx: RequestContext, customer_id: uuid.UUID, dates: list[ImportantDate], at: datetime
) -> None:
    """Keep the customer's birthday (sealed); a new or changed date counts as entered `at`."""
    session = ctx.session
    customer_id = await repo.survivor_of(session, customer_id)
    if await repo.erased_at(session, customer_id) is not None:
        return
    birthday = next((d for d in dates if d.kind == "birthday"), None)
    if birthday is None:
        await repo.drop_birthday(session, customer_id)
        return
    key = rules.month_day(birthday.month, birthday.day)
    index = blind_index(key, BIRTHDAY_INDEX)
    assert index is not None
    await repo.put_birthday(session, customer_id, key, index, at)


async def tier_changed(
    ctx: RequestContext, customer_id: uuid.UUID, tier: str, at: datetime
) -> None:
    customer_id = await repo.survivor_of(ctx.session, customer_id)
    await repo.set_tier(ctx.session, customer_id, tier, at)


async def merge(ctx: RequestContext, survivor: uuid.UUID, duplicate: uuid.UUID) -> None:
    """The duplicate's lots, ledger, purchases and redemptions move to the survivor, which
    keeps the higher level; the duplicate's later events land on the survivor too."""
    session = ctx.session
    survivor = await repo.survivor_of(session, survivor)
    if survivor == duplicate:
        return
    for customer in sorted((survivor, duplicate)):  # one lock order: no deadlock
        await repo.lock_member(session, customer)
    dup = await repo.member(session, duplicate)
    if dup is not None:
        levels = await repo.all_levels(session)
        await repo.enrol(session, survivor, ctx.now(), "merge", dup.level)
        surv = await repo.lock_member(session, survivor)
        assert surv is not None
        level = surv.level
        if rules.rank_of(levels, dup.level) > rules.rank_of(levels, level):
            await _change_level(ctx, survivor, level, dup.level, "up", 0)
            level = dup.level
        await repo.add_debt(session, survivor, dup.debt)
        await repo.move_customer(session, duplicate, survivor)
        await _raise_level(ctx, survivor, level, levels)
    else:
        await repo.move_customer(session, duplicate, survivor)
    await ctx.audit_change("merge", "member", duplicate, survivor, ["customer_id"])


async def erase(ctx: RequestContext, customer_id: uuid.UUID, at: datetime) -> None:
    """Drop the customer's personal data (the birthday); the points ledger stays, anonymous."""
    await repo.mark_erased(ctx.session, customer_id, at)
    await ctx.audit_change("erase", "customer", customer_id, customer_id, ["birthdays.month_day"])


# -- jobs --------------------------------------------------------------------------------------


async def run_jobs(ctx: RequestContext) -> int:
    """One pass of the time-driven work at the context's clock; what it handled.

    Each part claims its rows with `FOR UPDATE SKIP LOCKED` and marks them done in the same
    transaction, so with several replicas every lot expires, every notice goes out and every
    member is evaluated exactly once."""
    handled = await expire_lots(ctx)
    handled += await announce_expiring(ctx)
    handled += await birthday_bonuses(ctx)
    handled += await evaluate_levels(ctx)
    return handled


async def expire_lots(ctx: RequestContext) -> int:
    session, now = ctx.session, ctx.now()
    due = (
        await session.scalars(
            sa.select(lots.c.customer_id)
            .where(lots.c.remaining > 0, lots.c.expires_at <= now)
            .distinct()
            .limit(_settings(ctx).job_batch)
        )
    ).all()
    if not due:
        return 0
    locked = (
        await session.scalars(
            sa.select(members.c.customer_id)
            .where(members.c.customer_id.in_(due))
            .order_by(members.c.customer_id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not locked:
        return 0
    expiring = (
        sa.select(lots.c.id, lots.c.remaining)
        .where(lots.c.customer_id.in_(locked), lots.c.remaining > 0, lots.c.expires_at <= now)
        .cte("expiring")
    )
    rows = await session.execute(
        sa.update(lots)
        .where(lots.c.id == expiring.c.id)
        .values(remaining=0)
        .returning(lots.c.id, lots.c.customer_id, expiring.c.remaining)
    )
    by_customer: dict[uuid.UUID, list[tuple[int, int]]] = defaultdict(list)
    for r in rows:
        by_customer[r.customer_id].append((r.id, int(r.remaining)))
    for customer_id, taken in by_customer.items():
        points = sum(p for _, p in taken)
        entry_id = await repo.add_entry(
            session,
            customer_id=customer_id,
            at=now,
            kind="expire",
            points=-points,
            reason="expired",
            details={"lots": [lot for lot, _ in taken]},
        )
        assert entry_id is not None
        await repo.add_draws(session, entry_id, taken)
        await ctx.outbox.emit(
            session, PointsExpired(customer_id=customer_id, occurred_at=now, points=points)
        )
    return len(by_customer)


async def announce_expiring(ctx: RequestContext) -> int:
    """`loyalty.points_expiring` once for each member's lots expiring at the same time."""
    session, s, now = ctx.session, _settings(ctx), ctx.now()
    claimed = (
        sa.select(lots.c.id)
        .where(
            lots.c.remaining > 0,
            ~lots.c.expiring_notified,
            lots.c.expires_at > now,
            lots.c.expires_at <= now + timedelta(days=s.expiring_notice_days),
        )
        .limit(s.job_batch)
        .with_for_update(skip_locked=True)
        .cte("claimed")
    )
    rows = await session.execute(
        sa.update(lots)
        .where(lots.c.id == claimed.c.id)
        .values(expiring_notified=True)
        .returning(lots.c.customer_id, lots.c.expires_at, lots.c.remaining)
    )
    notices: dict[tuple[uuid.UUID, datetime], int] = defaultdict(int)
    for r in rows:
        notices[(r.customer_id, r.expires_at)] += int(r.remaining)
    await ctx.outbox.emit(
        session,
        *(
            PointsExpiring(customer_id=c, occurred_at=now, points=p, expires_at=at)
            for (c, at), p in notices.items()
        ),
    )
    return len(notices)


async def birthday_bonuses(ctx: RequestContext) -> int:
    """The birthday bonus, once a year, for dates known `birthday_min_known_days` before."""
    session, s, now = ctx.session, _settings(ctx), ctx.now()
    today = now.date()
    dates: dict[str, Any] = {}
    for back in range(s.birthday_grace_days, -1, -1):  # the nearest day wins an index
        day = today - timedelta(days=back)
        for key in rules.birthdays_falling_on(day):
            index = blind_index(key, BIRTHDAY_INDEX)
            assert index is not None
            dates[index] = day
    year_of = sa.case(
        *((birthdays.c.day_index == index, day.year) for index, day in dates.items()), else_=0
    )
    rows = (
        await session.execute(
            sa.select(birthdays.c.customer_id, birthdays.c.day_index, birthdays.c.entered_at)
            .join(members, members.c.customer_id == birthdays.c.customer_id)
            .where(
                birthdays.c.day_index.in_(list(dates)),
                members.c.erased_at.is_(None),
                sa.func.coalesce(birthdays.c.last_handled_year, 0) < year_of,
            )
            .limit(s.job_batch)
            .with_for_update(of=[birthdays, members], skip_locked=True)
        )
    ).all()
    for r in rows:
        day = dates[r.day_index]
        await session.execute(
            sa.update(birthdays)
            .where(birthdays.c.customer_id == r.customer_id)
            .values(last_handled_year=day.year)
        )
        if s.birthday_bonus_points <= 0 or not rules.birthday_bonus_due(
            r.entered_at, day, s.birthday_min_known_days
        ):
            continue
        source_id = f"birthday:{r.customer_id}:{day.year}"
        await award_bonus(ctx, r.customer_id, s.birthday_bonus_points, source_id, "birthday")
    return len(rows)


async def award_bonus(
    ctx: RequestContext, customer_id: uuid.UUID, points: int, source_id: str, reason: str
) -> None:
    """A bonus lot, spendable at once; once per `source_id`."""
    session, s, now = ctx.session, _settings(ctx), ctx.now()
    expires = rules.expires_at(now, s.expiry_months)
    lot_id = await repo.add_lot(
        session,
        customer_id=customer_id,
        source="bonus",
        source_id=source_id,
        points=points,
        earned_at=now,
        available_at=now,
        expires_at=expires,
    )
    entry_id = await repo.add_entry(
        session,
        customer_id=customer_id,
        at=now,
        kind="bonus",
        points=points,
        reason=reason,
        source_id=source_id,
        lot_id=lot_id,
    )
    if entry_id is None:  # awarded before: the lot goes again
        await session.execute(sa.delete(lots).where(lots.c.id == lot_id))
        return
    await ctx.outbox.emit(
        session,
        PointsEarned(
            customer_id=customer_id,
            occurred_at=now,
            points=points,
            source="birthday",
            source_id=source_id,
            available_at=now,
            expires_at=expires,
        ),
    )


async def evaluate_levels(ctx: RequestContext) -> int:
    """The monthly evaluation: members not yet evaluated this month move to their qualifying
    level, down by one level at most."""
    session, s, now = ctx.session, _settings(ctx), ctx.now()
    month = rules.month_key(now)
    rows = (
        await session.execute(
            sa.select(members.c.customer_id, members.c.level)
            .where(members.c.evaluated_month < month)
            .order_by(members.c.customer_id)
            .limit(s.job_batch)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return 0
    levels = await repo.all_levels(session)
    ids = [r.customer_id for r in rows]
    earned = await repo.earned_in_window(session, ids, now - timedelta(days=s.level_window_days))
    for r in rows:
        target = rules.evaluate(levels, r.level, earned[r.customer_id])
        if target is not None and target.code != r.level:
            up = rules.rank_of(levels, target.code) > rules.rank_of(levels, r.level)
            await _change_level(
                ctx,
                r.customer_id,
                r.level,
                target.code,
                "up" if up else "down",
                earned[r.customer_id],
            )
    await session.execute(
        sa.update(members).where(members.c.customer_id.in_(ids)).values(evaluated_month=month)
    )
    return len(rows)


# -- reports -----------------------------------------------------------------------------------


async def liability(ctx: RequestContext) -> LiabilityReport:
    s, now = _settings(ctx), ctx.now()
    available, pending, debt, by_month = await repo.liability(ctx.session, now)

    def worth(points: int) -> Decimal:
        return (s.point_value * points).quantize(Decimal("0.01"))

    outstanding = available + pending - debt
    return LiabilityReport(
        as_of=now,
        currency=s.currency,
        point_value=s.point_value,
        available=available,
        pending=pending,
        debt=debt,
        outstanding=outstanding,
        value=worth(outstanding),
        expiring_by_month=[
            ExpiringMonth(month=r.month, points=int(r.points), value=worth(int(r.points)))
            for r in by_month
        ],
    )


async def levels(ctx: RequestContext) -> list[Level]:
    return await repo.all_levels(ctx.session)


async def rewards(ctx: RequestContext, active_only: bool) -> list[RewardRead]:
    rows = await repo.all_rewards(ctx.session, active_only)
    return [RewardRead.model_validate(r, from_attributes=True) for r in rows]
