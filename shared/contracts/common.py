"""Types shared by the event contracts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, PlainSerializer

from shared.events.registry import EventContract

CUSTOMER_ID_EXAMPLE = "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e"

# Money travels as a decimal string ("1234.50") so no consumer loses precision to floats.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
    Field(max_digits=18, decimal_places=4, examples=["1250.00"]),
]
Tier = Literal["A", "B", "C"]


class CustomerEvent(EventContract):
    """Every Kehu event is about one customer; its id is the Kafka key."""

    customer_id: UUID = Field(
        description="The customer the event is about (the Kafka key).",
        examples=[CUSTOMER_ID_EXAMPLE],
    )
    occurred_at: datetime = Field(description="When it happened in the domain (UTC).")
