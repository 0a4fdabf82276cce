"""Consumed events: customer tiers (kehu.analytics), merges and erasures (kehu.customers).

Handlers tolerate any order across topics: tiers keep the newest `occurred_at`, merges leave a
redirect so complaints filed later for the duplicate land on the survivor.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import privacy, service
from services.complaints import repository as repo
from services.complaints.models import (
    Action,
    Complaint,
    CustomerRedirect,
    CustomerTier,
    ErasedCustomer,
    Note,
    Transition,
    idempotency_keys,
)
from shared.consumer import EventHandler
from shared.contracts.analytics import CustomerTierChanged
from shared.contracts.customers import CustomerErased, CustomerMerged
from shared.events.envelope import CloudEvent

GROUP_ID = "complaints"


def handlers(ctx: service.Context) -> dict[str, EventHandler]:
    async def tier_changed(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerTierChanged.model_validate(event.data)
        stmt = insert(CustomerTier).values(
            customer_id=e.customer_id, tier=e.tier, as_of=e.occurred_at
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[CustomerTier.customer_id],
            set_={"tier": stmt.excluded.tier, "as_of": stmt.excluded.as_of},
            where=CustomerTier.as_of <= stmt.excluded.as_of,
        ).returning(CustomerTier.customer_id)
        if (await session.execute(upsert)).first() is not None:  # newer than what we knew
            await service.retarget_customer(ctx, session, e.customer_id, e.tier)

    async def merged(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerMerged.model_validate(event.data)
        survivor, duplicate = e.customer_id, e.merged_customer_id
        await session.execute(
            insert(CustomerRedirect)
            .values(merged_id=duplicate, survivor_id=survivor)
            .on_conflict_do_update(
                index_elements=[CustomerRedirect.merged_id], set_={"survivor_id": survivor}
            )
        )
        # Duplicates merged into the duplicate earlier now lead to the survivor too.
        await session.execute(
            sa.update(CustomerRedirect)
            .where(CustomerRedirect.survivor_id == duplicate)
            .values(survivor_id=survivor)
        )
        await session.execute(
            sa.update(Complaint)
            .where(Complaint.customer_id == duplicate)
            .values(customer_id=survivor, version=Complaint.version + 1, updated_at=sa.func.now())
        )
        tier = await repo.tier_of(session, survivor)
        if tier is not None:
            await service.retarget_customer(ctx, session, survivor, tier)
        await privacy.changed(
            session, None, privacy.SYSTEM, "merge", "customer", duplicate, survivor, ["customer_id"]
        )
        # The survivor was erased first (events of different customers come in any order):
        # what the duplicate brings along is scrubbed too.
        if await repo.is_erased(session, survivor):
            await scrub_customer(session, survivor)

    async def erased(session: AsyncSession, event: CloudEvent) -> None:
        e = CustomerErased.model_validate(event.data)
        await session.execute(
            insert(ErasedCustomer)
            .values(customer_id=e.customer_id, erased_at=e.occurred_at)
            .on_conflict_do_nothing()
        )
        await scrub_customer(session, e.customer_id)

    return {
        CustomerTierChanged.event_type(): tier_changed,
        CustomerMerged.event_type(): merged,
        CustomerErased.event_type(): erased,
    }


async def scrub_customer(session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Remove the customer's personal data (values set to NULL, so no ciphertext remains)."""
    ids = sa.select(Complaint.id).where(Complaint.customer_id == customer_id)
    # Keep category, severity, timings, SLA facts and ratings; drop who and what was said.
    await session.execute(
        sa.update(Complaint)
        .where(Complaint.customer_id == customer_id)
        .values(
            complainant_name=None,
            complainant_email=None,
            complainant_phone=None,
            subject=None,
            description=None,
            root_cause=None,
            resolution=None,
            rating_comment=None,
            erased_at=sa.func.now(),
            version=Complaint.version + 1,
            updated_at=sa.func.now(),
        )
    )
    await session.execute(sa.update(Note).where(Note.complaint_id.in_(ids)).values(body=None))
    await session.execute(
        sa.update(Transition).where(Transition.complaint_id.in_(ids)).values(note=None)
    )
    await session.execute(
        sa.update(Action).where(Action.complaint_id.in_(ids)).values(description=None)
    )
    # Stored Idempotency-Key replies repeat the complainant's details: they go too.
    merged = await session.scalars(
        sa.select(CustomerRedirect.merged_id).where(CustomerRedirect.survivor_id == customer_id)
    )
    every_id = [str(customer_id), *(str(m) for m in merged)]
    await session.execute(
        sa.delete(idempotency_keys).where(
            idempotency_keys.c.body["customer_id"].astext.in_(every_id)
        )
    )
    await privacy.changed(
        session,
        None,
        privacy.SYSTEM,
        "erase",
        "customer",
        customer_id,
        customer_id,
        [f"complaints.{f}" for f in privacy.PII_FIELDS["complaint"]]
        + [
            "complaint_notes.body",
            "complaint_transitions.note",
            "complaint_actions.description",
        ],
    )
