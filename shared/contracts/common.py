"""Types shared by the event contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, Field, PlainSerializer

from shared.events.registry import EventContract

CUSTOMER_ID_EXAMPLE = "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e"

# Money travels as a decimal string ("1234.50") so no consumer loses precision to floats.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
    Field(max_digits=18, decimal_places=4, examples=["1250.00"]),
]
Tier = Literal["A", "B", "C"]


def in_utc(value: datetime) -> datetime:
    """The same instant in UTC; a time without an offset is read as UTC. A time near the
    calendar's ends with a large offset (`0001-01-01T00:00:00+05:00`) has no UTC equivalent: a
    ValueError pydantic turns into a 422 naming the field, not the OverflowError it would let
    through as a 500 (or asyncpg would raise on the query)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date and time out of range once converted to UTC") from None


# Times from callers, in bodies and query strings, stored and compared in UTC. UtcDatetime must
# carry an offset; UtcInstant may omit it (then it is UTC), for filters that always took both.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(in_utc)]
UtcInstant = Annotated[datetime, AfterValidator(in_utc)]


class CustomerEvent(EventContract):
    """Every Kehu event is about one customer; its id is the Kafka key."""

    customer_id: UUID = Field(
        description="The customer the event is about (the Kafka key).",
        examples=[CUSTOMER_ID_EXAMPLE],
    )
    occurred_at: datetime = Field(description="When it happened in the domain (UTC).")
