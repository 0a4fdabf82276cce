"""CloudEvents 1.0: structured JSON over HTTP, binary mode (ce_* headers) on Kafka."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Headers = list[tuple[str, bytes]]
_REQUIRED = ("id", "source", "type", "specversion")
_REQUIRED_SET = frozenset(_REQUIRED)


def uuid7() -> uuid.UUID:
    """An RFC 9562 version 7 UUID: 48 bits of Unix milliseconds, then 74 random bits.

    Event ids made later sort later, so the indexes keyed by them (the outbox's `event_id`,
    every consumer's inbox) grow at their right edge instead of at a random page each: fewer
    pages dirtied per batch, fewer full-page images in the WAL. Still unique without
    coordination (74 random bits per millisecond) and still a plain UUID to every reader."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC variant
    return uuid.UUID(int=value)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured JSON form."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "specversion": "1.0",
                    "id": "0c3a6f53-8d53-4a8b-9a8e-2f9e4b1b2c3d",
                    "source": "/kehu/profiles",
                    "type": "kehu.customer.created.v1",
                    "subject": "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e",
                    "time": "2026-11-23T10:00:00Z",
                    "datacontenttype": "application/json",
                    "partitionkey": "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e",
                    "data": {"customer_id": "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e"},
                }
            ]
        },
    )

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid7()))
    source: str = Field(description="The emitting service, e.g. `/kehu/profiles`.")
    type: str = Field(description="Versioned event type, e.g. `kehu.customer.created.v1`.")
    subject: str | None = Field(None, description="The customer the event is about.")
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    partitionkey: str | None = Field(
        None, description="CloudEvents partitioning extension: the Kafka key (customer id)."
    )
    sequence: str | None = Field(
        None, description="Position in the emitting service's event log (the feed cursor)."
    )
    data: dict[str, Any] = Field(default_factory=dict)

    # The undecoded JSON of `data` when read with `from_kafka(..., decode_data=False)`: a
    # consumer that validates it against a contract anyway decodes and validates it in one pass
    # (`Contract.model_validate_json`) instead of building the dict first. A plain slot, not a
    # pydantic private attribute: those cost more per event than the decoding saved.
    __slots__ = ("_payload", "_raw_data")

    @property
    def raw_data(self) -> bytes | None:
        return getattr(self, "_raw_data", None)

    @property
    def payload(self) -> Any:
        """The data as a consumer validated it ahead of applying it (`keep_payload`), if so."""
        return getattr(self, "_payload", None)

    def keep_payload(self, payload: Any) -> None:
        object.__setattr__(self, "_payload", payload)


# The binary-mode headers of the envelope's attributes (any other `ce_*` is an extension).
_HEADER_ATTRS = {
    **{f"ce_{name}": name for name in CloudEvent.model_fields if name != "datacontenttype"},
    "content-type": "datacontenttype",
}
# The model's validator without `model_validate`'s Python wrapper (a consumer calls it per record).
_validate_envelope = CloudEvent.__pydantic_validator__.validate_python


def to_kafka(event: CloudEvent) -> tuple[bytes | None, bytes, Headers]:
    """Binary content mode: (key, value, headers)."""
    return binary_record(
        id=event.id,
        source=event.source,
        type=event.type,
        time=event.time,
        subject=event.subject,
        partitionkey=event.partitionkey,
        sequence=event.sequence,
        value=json.dumps(event.data, separators=(",", ":"), default=str).encode(),
        specversion=event.specversion,
        datacontenttype=event.datacontenttype,
    )


def binary_record(
    *,
    id: str,
    source: str,
    type: str,
    time: datetime,
    subject: str | None,
    partitionkey: str | None,
    sequence: str | None,
    value: bytes,
    specversion: str = "1.0",
    datacontenttype: str = "application/json",
) -> tuple[bytes | None, bytes, Headers]:
    """An event's binary-mode record from its attributes and its data's JSON as it is (the
    outbox relay sends the JSON PostgreSQL stored, without decoding it)."""
    headers: Headers = [
        ("ce_specversion", specversion.encode()),
        ("ce_id", id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", type.encode()),
        ("ce_time", time.isoformat().encode()),
        ("content-type", datacontenttype.encode()),
    ]
    if subject:
        headers.append(("ce_subject", subject.encode()))
    if partitionkey:
        headers.append(("ce_partitionkey", partitionkey.encode()))
    if sequence:
        headers.append(("ce_sequence", sequence.encode()))
    key = partitionkey.encode() if partitionkey else None
    return key, value, headers


class MalformedEvent(ValueError):
    """A Kafka record that is not a valid binary-mode CloudEvent."""


def from_kafka(value: bytes | None, headers: Any, *, decode_data: bool = True) -> CloudEvent:
    """The event of a binary-mode record. With `decode_data=False` its `data` stays empty and
    the value is kept undecoded in `raw_data` (the caller validates it: a non-JSON value then
    fails there, not here)."""
    attrs: dict[str, Any] = {}
    for name, raw in headers or ():
        attr = _HEADER_ATTRS.get(name)
        if attr is None:
            if not name.startswith("ce_"):
                continue
            attr = name[3:]  # an extension attribute
        attrs[attr] = raw.decode()
    if not _REQUIRED_SET <= attrs.keys():
        missing = [a for a in _REQUIRED if a not in attrs]
        raise MalformedEvent(
            f"missing CloudEvents headers: {', '.join('ce_' + m for m in missing)}"
        )
    if not decode_data:
        try:
            event = _validate_envelope(attrs)
        except ValueError as exc:
            raise MalformedEvent(str(exc)) from exc
        object.__setattr__(event, "_raw_data", value or b"{}")
        return event
    try:
        attrs["data"] = json.loads(value) if value else {}
    except ValueError as exc:
        raise MalformedEvent(f"event data is not JSON: {exc}") from exc
    if not isinstance(attrs["data"], dict):
        raise MalformedEvent("event data must be a JSON object")
    try:
        return CloudEvent.model_validate(attrs)
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from exc
