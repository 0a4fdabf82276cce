"""Queries of the outreach service; they flush, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.outreach.models import (
    Consent,
    Customer,
    DevMail,
    Message,
    MessageState,
    SurveyLink,
    Task,
    Template,
)
from shared.keyset import Keyset, SortKey, parse_datetime

# -- customers and consent ----------------------------------------------------------------------


async def customer(
    session: AsyncSession, customer_id: uuid.UUID, lock: bool = False
) -> Customer | None:
    query = sa.select(Customer).where(Customer.customer_id == customer_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def ensure_customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    """The customer's row, created empty when no event about it arrived yet (locked)."""
    await session.execute(insert(Customer).values(customer_id=customer_id).on_conflict_do_nothing())
    row = await customer(session, customer_id, lock=True)
    assert row is not None
    return row


async def set_consent(
    session: AsyncSession,
    customer_id: uuid.UUID,
    purpose: str,
    granted: bool,
    source: str,
    occurred_at: datetime,
    *,
    supersede: bool = False,
) -> None:
    """Record a consent change unless a newer one is known (events may arrive out of order).

    `supersede`: a decision taken here and now (an unsubscribe link) replaces whatever was
    known, even a change stamped later by another service's clock; it keeps the later stamp,
    so an older event arriving afterwards cannot undo it."""
    statement = insert(Consent).values(
        customer_id=customer_id,
        purpose=purpose,
        granted=granted,
        source=source,
        occurred_at=occurred_at,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Consent.customer_id, Consent.purpose],
            set_={
                "granted": statement.excluded.granted,
                "source": statement.excluded.source,
                "occurred_at": sa.func.greatest(
                    Consent.occurred_at, statement.excluded.occurred_at
                ),
            },
            where=None if supersede else Consent.occurred_at <= statement.excluded.occurred_at,
        )
    )


async def consents_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Consent]:
    query = sa.select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.purpose)
    return (await session.scalars(query)).all()


async def consent(session: AsyncSession, customer_id: uuid.UUID, purpose: str) -> Consent | None:
    return await session.get(Consent, (customer_id, purpose))


async def birthday_customers(
    session: AsyncSession, months_days: list[tuple[int, int]], after: uuid.UUID | None, limit: int
) -> Sequence[Customer]:
    """Live customers with a birthday on one of `months_days`, by id after `after`."""
    matches = [
        Customer.important_dates.contains([{"kind": "birthday", "month": m, "day": d}])
        for m, d in months_days
    ]
    query = sa.select(Customer).where(
        sa.or_(*matches), Customer.erased_at.is_(None), Customer.merged_into.is_(None)
    )
    if after is not None:
        query = query.where(Customer.customer_id > after)
    return (await session.scalars(query.order_by(Customer.customer_id).limit(limit))).all()


async def live_customers(
    session: AsyncSession, after: uuid.UUID | None, limit: int
) -> Sequence[Customer]:
    query = sa.select(Customer).where(
        Customer.erased_at.is_(None),
        Customer.merged_into.is_(None),
        Customer.status == "active",
        Customer.dimensions_at.is_not(None),
    )
    if after is not None:
        query = query.where(Customer.customer_id > after)
    return (await session.scalars(query.order_by(Customer.customer_id).limit(limit))).all()


# -- templates ----------------------------------------------------------------------------------


async def template(
    session: AsyncSession, key: str, locale: str, version: int | None = None
) -> Template | None:
    query = sa.select(Template).where(Template.key == key, Template.locale == locale)
    if version is not None:
        query = query.where(Template.version == version)
    return (await session.scalars(query.order_by(Template.version.desc()).limit(1))).first()


async def template_versions(session: AsyncSession, key: str) -> Sequence[Template]:
    query = (
        sa.select(Template)
        .where(Template.key == key)
        .order_by(Template.locale, Template.version.desc())
    )
    return (await session.scalars(query)).all()


async def template_keys(session: AsyncSession) -> Sequence[tuple[str, str, int]]:
    """(key, locale, newest version) of every stored template."""
    query = sa.select(Template.key, Template.locale, sa.func.max(Template.version)).group_by(
        Template.key, Template.locale
    )
    return [(k, loc, v) for k, loc, v in (await session.execute(query)).all()]


async def lock_template_key(session: AsyncSession, key: str, locale: str) -> None:
    """Serialise concurrent new versions of one template."""
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"template:{key}:{locale}")))
    )


# -- messages -----------------------------------------------------------------------------------

MESSAGE_ORDER = Keyset(
    SortKey(Message.created_at, "created_at", descending=True, parse=parse_datetime),
    SortKey(Message.id, "id", descending=True, parse=uuid.UUID),
)


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a message; False when its `dedupe_key` was taken already (nothing twice)."""
    if values.get("dedupe_key") is None:
        session.add(Message(**values))
        await session.flush()
        return True
    result = await session.execute(
        insert(Message)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Message.dedupe_key])
        .returning(Message.id)
    )
    return result.first() is not None


async def message(
    session: AsyncSession, message_id: uuid.UUID, lock: bool = False
) -> Message | None:
    query = sa.select(Message).where(Message.id == message_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def message_by_provider_ref(session: AsyncSession, reference: str) -> Message | None:
    query = sa.select(Message).where(Message.provider_ref == reference).with_for_update().limit(1)
    return (await session.scalars(query)).first()


async def list_messages(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Message], str | None]:
    query = sa.select(Message)
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    if status is not None:
        query = query.where(Message.status == status)
    rows = (await session.scalars(MESSAGE_ORDER.apply(query, cursor, limit))).all()
    return MESSAGE_ORDER.page(rows, limit)


async def messages_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Message]:
    query = (
        sa.select(Message)
        .where(Message.customer_id == customer_id)
        .order_by(Message.created_at, Message.id)
    )
    return (await session.scalars(query)).all()


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> Sequence[Message]:
    """Messages due to be (re)tried, locked; another replica skips them."""
    query = (
        sa.select(Message)
        .where(Message.status.in_(("queued", "deferred")), Message.next_attempt_at <= now)
        .order_by(Message.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def marketing_sent_since(
    session: AsyncSession, customer_id: uuid.UUID, since: datetime, exclude: uuid.UUID
) -> int:
    """Marketing messages that went out to the customer since `since` (for the cap)."""
    query = sa.select(sa.func.count()).where(
        Message.customer_id == customer_id,
        Message.purpose == "marketing",
        Message.status.in_(("sent", "delivered")),
        Message.sent_at >= since,
        Message.id != exclude,
    )
    return int((await session.execute(query)).scalar_one())


async def add_state(
    session: AsyncSession, message_id: uuid.UUID, status: str, reason: str | None, at: datetime
) -> None:
    session.add(MessageState(message_id=message_id, status=status, reason=reason, at=at))


async def states_of(session: AsyncSession, *message_ids: uuid.UUID) -> Sequence[MessageState]:
    query = (
        sa.select(MessageState)
        .where(MessageState.message_id.in_(message_ids))
        .order_by(MessageState.id)
    )
    return (await session.scalars(query)).all()


# -- survey links -------------------------------------------------------------------------------


async def insert_link(session: AsyncSession, link: SurveyLink) -> bool:
    """Store a link; False when the invitation has one already."""
    result = await session.execute(
        insert(SurveyLink)
        .values(
            id=link.id,
            invitation_id=link.invitation_id,
            customer_id=link.customer_id,
            message_id=link.message_id,
            context_type=link.context_type,
            locale=link.locale,
            expires_at=link.expires_at,
            created_at=link.created_at,
        )
        .on_conflict_do_nothing(index_elements=[SurveyLink.invitation_id])
        .returning(SurveyLink.id)
    )
    return result.first() is not None


async def link(session: AsyncSession, link_id: uuid.UUID, lock: bool = False) -> SurveyLink | None:
    query = sa.select(SurveyLink).where(SurveyLink.id == link_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def link_of_message(session: AsyncSession, message_id: uuid.UUID) -> SurveyLink | None:
    query = sa.select(SurveyLink).where(SurveyLink.message_id == message_id)
    return (await session.scalars(query)).first()


async def links_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[SurveyLink]:
    query = sa.select(SurveyLink).where(SurveyLink.customer_id == customer_id)
    return (await session.scalars(query.order_by(SurveyLink.created_at))).all()


# -- tasks --------------------------------------------------------------------------------------


async def insert_task(session: AsyncSession, values: dict[str, Any]) -> bool:
    result = await session.execute(
        insert(Task)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Task.dedupe_key])
        .returning(Task.id)
    )
    return result.first() is not None


async def claim_tasks(session: AsyncSession, now: datetime, limit: int) -> Sequence[Task]:
    query = (
        sa.select(Task)
        .where(Task.status == "pending", Task.next_attempt_at <= now)
        .order_by(Task.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


async def tasks_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Task]:
    query = sa.select(Task).where(Task.customer_id == customer_id).order_by(Task.created_at)
    return (await session.scalars(query)).all()


# -- the dev mail sink --------------------------------------------------------------------------


async def store_dev_mail(
    session: AsyncSession,
    *,
    received_at: datetime,
    message_id: uuid.UUID | None,
    mail_from: str | None,
    recipients: str,
    subject: str,
    raw: str,
) -> None:
    customer_id = None
    if message_id is not None:
        customer_id = (
            await session.execute(sa.select(Message.customer_id).where(Message.id == message_id))
        ).scalar_one_or_none()
    session.add(
        DevMail(
            received_at=received_at,
            message_id=message_id,
            customer_id=customer_id,
            mail_from=mail_from,
            recipients=recipients,
            subject=subject,
            raw=raw,
        )
    )
    await session.flush()


async def dev_mail(
    session: AsyncSession, *, to: str | None, message_id: uuid.UUID | None, limit: int
) -> list[DevMail]:
    query = sa.select(DevMail).order_by(DevMail.id.desc())
    if message_id is not None:
        query = query.where(DevMail.message_id == message_id)
    rows = list((await session.scalars(query.limit(limit if to is None else 1000))).all())
    if to is not None:  # sealed at rest: filter after opening
        rows = [r for r in rows if to.lower() in (r.recipients or "").lower()][:limit]
    return rows


async def dev_mail_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[DevMail]:
    query = sa.select(DevMail).where(DevMail.customer_id == customer_id).order_by(DevMail.id)
    return (await session.scalars(query)).all()


# -- erasure ------------------------------------------------------------------------------------


async def erase(session: AsyncSession, customer_id: uuid.UUID, at: datetime) -> None:
    """Scrub everything personal about the customer; keep the anonymous delivery facts."""
    await session.execute(
        sa.update(Message)
        .where(Message.customer_id == customer_id)
        .values(recipient=None, subject=None, body=None, variables=None, provider_ref=None)
    )
    await session.execute(
        sa.update(SurveyLink)
        .where(SurveyLink.customer_id == customer_id)
        .values(greeting_name=None, used_at=sa.func.coalesce(SurveyLink.used_at, at))
    )
    await session.execute(sa.delete(DevMail).where(DevMail.customer_id == customer_id))
    await session.execute(
        sa.update(Task)
        .where(Task.customer_id == customer_id, Task.status == "pending")
        .values(status="cancelled", last_error="customer_erased")
    )
    row = await ensure_customer(session, customer_id)
    row.erased_at = row.erased_at or at
    row.important_dates = []
    row.timezone = None
    await session.flush()


async def pending_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Message]:
    query = sa.select(Message).where(
        Message.customer_id == customer_id, Message.status.in_(("queued", "deferred"))
    )
    return (await session.scalars(query)).all()
