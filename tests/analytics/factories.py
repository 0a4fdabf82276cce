"""Event factories for analytics tests: typed contracts wrapped as CloudEvents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.contracts import complaints as cc
from shared.contracts import customers as pc
from shared.contracts import interactions as ic
from shared.contracts.common import CustomerEvent
from shared.contracts.loyalty import LevelChanged
from shared.events.envelope import CloudEvent
from shared.outbox import build_event

# Real time (to the second), so background re-ranks of a served app agree with the tests.
NOW = datetime.now(UTC).replace(microsecond=0)
SOURCES = {
    "kehu.customers": "/kehu/profiles",
    "kehu.interactions": "/kehu/interactions",
    "kehu.loyalty": "/kehu/loyalty",
}


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def ids(n: int) -> list[uuid.UUID]:
    """n fresh customer ids in ascending order (the ABC tie-break order)."""
    return sorted(uuid.uuid4() for _ in range(n))


def event(contract: CustomerEvent) -> CloudEvent:
    return build_event(contract, SOURCES.get(contract.topic, "/kehu/complaints"))


def created(customer_id: uuid.UUID, at: datetime | None = None, **dims: Any) -> CloudEvent:
    dimensions = {"kind": "organisation", "customer_number": f"C-{customer_id.hex[:6]}", **dims}
    return event(
        pc.CustomerCreated(
            customer_id=customer_id,
            occurred_at=at or days_ago(500),
            dimensions=pc.CustomerDimensions(**dimensions),
        )
    )


def purchase(
    customer_id: uuid.UUID,
    margin: str | Decimal,
    at: datetime | None = None,
    amount: str | Decimal | None = None,
    purchase_id: uuid.UUID | None = None,
) -> CloudEvent:
    margin = Decimal(margin)
    amount = Decimal(amount) if amount is not None else margin * 4
    return event(
        ic.PurchaseRecorded(
            customer_id=customer_id,
            occurred_at=at or days_ago(10),
            purchase_id=purchase_id or uuid.uuid4(),
            external_ref=f"ORD-{uuid.uuid4().hex[:8]}",
            amount=amount,
            cost=amount - margin,
            margin=margin,
            currency="CNY",
            status="paid",
        )
    )


def refund(
    customer_id: uuid.UUID,
    purchase_id: uuid.UUID,
    margin: str,
    amount: str,
    at: datetime | None = None,
) -> CloudEvent:
    return event(
        ic.PurchaseRefunded(
            customer_id=customer_id,
            occurred_at=at or days_ago(5),
            purchase_id=purchase_id,
            refund_id=uuid.uuid4(),
            amount=Decimal(amount),
            margin=Decimal(margin),
            currency="CNY",
        )
    )


def cancel(customer_id: uuid.UUID, purchase_id: uuid.UUID) -> CloudEvent:
    return event(
        ic.PurchaseCancelled(
            customer_id=customer_id, occurred_at=days_ago(4), purchase_id=purchase_id
        )
    )


def survey(
    customer_id: uuid.UUID,
    scores: dict[str, int],
    at: datetime | None = None,
    nps: int | None = None,
    effort: int | None = None,
    channel: str | None = "email",
) -> CloudEvent:
    return event(
        ic.SurveySubmitted(
            customer_id=customer_id,
            occurred_at=at or days_ago(3),
            survey_id=uuid.uuid4(),
            channel=channel,  # type: ignore[arg-type]
            scores=scores,  # type: ignore[arg-type]
            nps=nps,
            effort=effort,
        )
    )


def interaction(customer_id: uuid.UUID, channel: str, at: datetime | None = None) -> CloudEvent:
    return event(
        ic.InteractionLogged(
            customer_id=customer_id,
            occurred_at=at or days_ago(2),
            interaction_id=uuid.uuid4(),
            channel=channel,  # type: ignore[arg-type]
            direction="outbound",
        )
    )


def complaint_received(
    customer_id: uuid.UUID,
    complaint_id: uuid.UUID,
    at: datetime,
    category: str = "delivery",
    severity: str = "medium",
) -> CloudEvent:
    return event(
        cc.ComplaintReceived(
            customer_id=customer_id,
            occurred_at=at,
            complaint_id=complaint_id,
            channel="phone",
            category=category,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            first_response_due_at=at + timedelta(hours=4),
            resolution_due_at=at + timedelta(days=2),
        )
    )


def complaint_flow(
    customer_id: uuid.UUID,
    at: datetime,
    first_response_s: int,
    resolution_s: int | None,
    *,
    category: str = "delivery",
    root_cause: str | None = "packaging",
    fr_met: bool = True,
    res_met: bool = True,
    rating: int | None = None,
    reopened: bool = False,
) -> list[CloudEvent]:
    """The events of one complaint from receipt to (optionally) resolution and rating."""
    cid = uuid.uuid4()
    base = dict(customer_id=customer_id, complaint_id=cid)
    events = [
        complaint_received(customer_id, cid, at, category=category),
        event(
            cc.ComplaintAcknowledged(
                **base,
                occurred_at=at + timedelta(seconds=first_response_s),
                first_response_seconds=first_response_s,
                first_response_met=fr_met,
            )
        ),
    ]
    if not fr_met:
        events.append(
            event(
                cc.ComplaintSlaBreached(
                    **base,
                    occurred_at=at + timedelta(hours=4),
                    target="first_response",
                    due_at=at + timedelta(hours=4),
                )
            )
        )
    if resolution_s is not None:
        resolved_at = at + timedelta(seconds=resolution_s)
        events.append(
            event(
                cc.ComplaintResolved(
                    **base,
                    occurred_at=resolved_at,
                    category=category,  # type: ignore[arg-type]
                    severity="medium",
                    root_cause=root_cause,
                    resolution_seconds=resolution_s,
                    resolution_met=res_met,
                )
            )
        )
        if reopened:
            events.append(event(cc.ComplaintReopened(**base, occurred_at=resolved_at)))
            events.append(
                event(
                    cc.ComplaintStatusChanged(
                        **base,
                        occurred_at=resolved_at + timedelta(seconds=1),
                        from_status="resolved",
                        to_status="investigating",
                    )
                )
            )
        if rating is not None:
            events.append(
                event(
                    cc.ComplaintRated(
                        **base, occurred_at=resolved_at + timedelta(hours=1), rating=rating
                    )
                )
            )
    return events


def level_changed(
    customer_id: uuid.UUID, level: str, at: datetime, previous: str | None = None
) -> CloudEvent:
    return event(
        LevelChanged(
            customer_id=customer_id,
            occurred_at=at,
            level=level,
            previous_level=previous,
            direction="up",
            earned_in_window=2000,
        )
    )
