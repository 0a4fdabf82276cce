"""Event envelope (CloudEvents 1.0) and the registry of typed, versioned event contracts."""

from shared.events.envelope import CloudEvent, from_kafka, to_kafka
from shared.events.registry import REGISTRY, EventContract, EventRegistry, contract

__all__ = [
    "REGISTRY",
    "CloudEvent",
    "EventContract",
    "EventRegistry",
    "contract",
    "from_kafka",
    "to_kafka",
]
