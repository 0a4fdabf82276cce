"""Typed, versioned event contracts and the registry that knows them all.

A contract is an immutable pydantic model of an event's `data`. Its CloudEvents type is
`kehu.<name>.v<version>` (for example `kehu.customer.created.v1`); a breaking change is a new
version, never an edit. The registry drives validation, the AsyncAPI document and the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

TOPIC_PREFIX = "kehu."


class EventContract(BaseModel):
    """Base of every event payload. Subclasses are registered with `@contract`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_name: ClassVar[str]
    event_version: ClassVar[int]
    topic: ClassVar[str]
    summary: ClassVar[str]

    @classmethod
    def event_type(cls) -> str:
        return f"kehu.{cls.event_name}.v{cls.event_version}"

    def partition_key(self) -> str:
        """The Kafka key: the customer the event is about, so its events stay ordered."""
        return str(self.customer_id)  # type: ignore[attr-defined]  # every contract has one


C = TypeVar("C", bound=type[EventContract])


class UnknownEventType(KeyError):
    pass


class EventRegistry:
    def __init__(self) -> None:
        self._by_type: dict[str, type[EventContract]] = {}

    def register(self, cls: type[EventContract]) -> None:
        existing = self._by_type.get(cls.event_type())
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {cls.event_type()} is registered twice")
        self._by_type[cls.event_type()] = cls

    def get(self, event_type: str) -> type[EventContract]:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def parse(self, event_type: str, data: Any) -> EventContract:
        """Validate `data` against the contract of `event_type` (raises on mismatch)."""
        return self.get(event_type).model_validate(data)

    def topics(self) -> set[str]:
        return {cls.topic for cls in self._by_type.values()}

    def __iter__(self) -> Iterator[type[EventContract]]:
        return iter(sorted(self._by_type.values(), key=lambda c: c.event_type()))

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type


REGISTRY = EventRegistry()


def contract(name: str, version: int, topic: str, summary: str) -> Callable[[C], C]:
    """Class decorator registering an event contract."""

    def decorate(cls: C) -> C:
        cls.event_name = name
        cls.event_version = version
        cls.topic = topic if topic.startswith(TOPIC_PREFIX) else TOPIC_PREFIX + topic
        cls.summary = summary
        REGISTRY.register(cls)
        return cls

    return decorate


__all__ = [
    "REGISTRY",
    "EventContract",
    "EventRegistry",
    "UnknownEventType",
    "ValidationError",
    "contract",
]
