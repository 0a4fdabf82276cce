"""The AsyncAPI 3.0 document and the event catalog, generated from the event contracts.

    python -m shared.asyncapi --write docs/     # regenerate the committed copies
    python -m shared.asyncapi --check docs/     # exit 1 if the committed copies are stale

Everything here is a pure function of the registered contracts (`shared.events.REGISTRY`
after `shared.contracts.load_all()`), so the output is deterministic and CI can diff it.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic.json_schema import models_json_schema

from shared.events.registry import REGISTRY, EventContract
from shared.problems import NotFound, problem_responses

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
# Only contracts defined here are documented (tests register throwaway ones).
DOCUMENTED_PACKAGES = ("shared.contracts",)
# The ports `make dev` uses (shared.devstack.SERVICES without KEHU_PORT_OFFSET).
SERVICE_PORTS = {
    "profiles": 8001,
    "interactions": 8002,
    "complaints": 8003,
    "analytics": 8004,
    "subscriptions": 8005,
    "loyalty": 8006,
    "outreach": 8007,
}
EXAMPLE_UUID = "6a1f7a0e-3f2b-4c55-8f0e-1d2c3b4a5f6e"
EXAMPLE_TIME = "2026-11-23T10:00:00Z"
EXAMPLE_DATE = "2026-11-23"
TOPIC_TITLES = {
    "kehu.customers": "Customers (profiles service)",
    "kehu.interactions": "Interactions, follow-ups, purchases, surveys (interactions service)",
    "kehu.complaints": "Cases of every type and complaints (service desk, complaints service)",
    "kehu.analytics": "Analytics insights (analytics service)",
    "kehu.subscriptions": "Webhook subscriptions (subscriptions service)",
    "kehu.loyalty": "Points, redemptions and membership levels (loyalty service)",
    "kehu.outreach": "Messages to customers and their delivery states (outreach service)",
}

# Which Kehu services read each topic with their default settings (each in its own consumer
# group). `tests/unit/test_asyncapi.py` checks it against the topic settings of analytics and
# outreach and the subscriptions service's DOMAIN_TOPICS; the others name theirs in `main.py`.
CONSUMERS: dict[str, tuple[str, ...]] = {
    "kehu.customers": (
        "analytics",
        "complaints",
        "interactions",
        "loyalty",
        "outreach",
        "subscriptions",
    ),
    "kehu.interactions": ("analytics", "complaints", "loyalty", "outreach", "subscriptions"),
    "kehu.complaints": ("analytics", "interactions", "outreach", "subscriptions"),
    "kehu.analytics": (
        "complaints",
        "interactions",
        "loyalty",
        "outreach",
        "profiles",
        "subscriptions",
    ),
    "kehu.loyalty": ("analytics", "outreach", "subscriptions"),
    "kehu.outreach": ("subscriptions",),
    "kehu.subscriptions": (),
}


def _consumers_text(topic: str) -> str:
    """The Kehu services that read `topic`, for the channel and the catalog page."""
    readers = CONSUMERS.get(topic, ())
    named = ["subscriptions (the webhooks)" if r == "subscriptions" else r for r in readers]
    return ", ".join(named) or "none"


ORDERING_TEXT = """\
- **Kafka**: the key is the customer id (the subscription id on `kehu.subscriptions`), so one
  customer's events on one topic are in order within their partition. Across topics there is
  no order: an interaction may arrive before the `customer.created` it refers to.
- **Delivery**: at least once. The same event can arrive twice (relay retries, consumer
  rebalances, webhook retries); deduplicate on the CloudEvents `id` (on webhooks also the
  `webhook-id` header). Nothing is lost: events are written in the same transaction as the
  change (transactional outbox) and kept in the service's event log (`GET /events`).
- **Webhooks**: for each subscription, one customer's events are delivered one at a time in
  the order Kehu consumed them; a later event waits while an earlier one is being retried.
  Every body also carries `time` and `sequence` (position in the publishing service's log)."""

VERSIONING_TEXT = """\
The type ends in its version (`.v1`). Within a version Kehu only adds optional fields; it never
removes, renames or retypes one, so ignore fields you do not know. A breaking change is a new
type (`.v2`) published alongside the old one for a deprecation period announced in this
catalog."""


READING_TEXT = """\
On Apache Kafka any client works. The embedded Tansu broker of `make dev` and `make test` serves
Kehu's own (aiokafka) clients, but librdkafka-based clients (kcat, confluent-kafka and most
non-Python clients) need care there. kcat 1.7.1 of Debian 12 (librdkafka 2.0.2) cannot read
the broker's ApiVersions answer, cannot join a consumer group and cannot resolve `-o beginning`
or `-o end`; it reads with `-X api.version.request=false -X broker.version.fallback=0.9.0`,
every partition assigned (`-C`, no `-G`) and an absolute start offset (`-o 0`).
confluent-kafka 2.16 (librdkafka 2.16) reads by assignment, and its first group join waits
about half of `session.timeout.ms` (about 23 s at the default 45 s). To watch a topic,
`python -m shared.events tail <topic> [--type TYPE] [--from-beginning]` prints each event as a
structured CloudEvent, one JSON line each, on any Kafka."""


def load_contracts() -> list[type[EventContract]]:
    """Every documented contract, sorted by event type."""
    from shared.contracts import load_all

    load_all()
    return [
        cls
        for cls in REGISTRY
        if any(
            cls.__module__ == pkg or cls.__module__.startswith(pkg + ".")
            for pkg in DOCUMENTED_PACKAGES
        )
    ]


def message_id(cls: type[EventContract]) -> str:
    return cls.event_type()


def channel_id(topic: str) -> str:
    return topic.removeprefix("kehu.")


# -- examples ----------------------------------------------------------------------------------


def _example(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _example(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return copy.deepcopy(schema["default"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _example(options[0], defs) if options else None
    kind = schema.get("type")
    if kind == "object":
        return {name: _example(prop, defs) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema.get("items", {}), defs)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return EXAMPLE_UUID
        if fmt == "date-time":
            return EXAMPLE_TIME
        if fmt == "date":
            return EXAMPLE_DATE
        length = schema.get("maxLength")
        return "string"[:length] if length else "string"
    return None


def example_payload(cls: type[EventContract], schemas: dict[str, Any]) -> dict[str, Any]:
    """A valid example of the contract's payload, built from its schema's examples."""
    data = _example(schemas[cls.__name__], schemas)
    # Round-trip through the contract: the example must be a payload Kehu could publish.
    return cls.model_validate(data).model_dump(mode="json")


def example_event(cls: type[EventContract], payload: dict[str, Any]) -> dict[str, Any]:
    """The example as a structured CloudEvent (webhooks, the pull feed)."""
    key = str(payload.get("customer_id") or payload.get("subscription_id"))
    service = cls.topic.removeprefix("kehu.")
    source = {"customers": "profiles"}.get(service, service)
    return {
        "specversion": "1.0",
        "id": "0c3a6f53-8d53-4a8b-9a8e-2f9e4b1b2c3d",
        "source": f"/kehu/{source}",
        "type": cls.event_type(),
        "subject": key,
        "time": EXAMPLE_TIME,
        "datacontenttype": "application/json",
        "partitionkey": key,
        "sequence": "42",
        "data": payload,
    }


# -- the AsyncAPI document ---------------------------------------------------------------------


def _headers_schema(cls: type[EventContract]) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in Kafka binary content mode.",
        "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"],
        "properties": {
            "ce_specversion": {**text, "const": "1.0"},
            "ce_id": {**text, "description": "Unique event id: deduplicate on it."},
            "ce_source": {**text, "description": "The publishing service, e.g. `/kehu/profiles`."},
            "ce_type": {**text, "const": cls.event_type()},
            "ce_time": {**text, "format": "date-time", "description": "When it was emitted."},
            "ce_subject": {**text, "description": "The customer (or subscription) id."},
            "ce_partitionkey": {**text, "description": "Same as the Kafka key."},
            "ce_sequence": {
                **text,
                "description": "Position in the publishing service's event log (feed cursor).",
            },
            "content-type": {**text, "const": "application/json"},
        },
    }


def _key_description(cls: type[EventContract]) -> str:
    if "customer_id" in cls.model_fields:
        return "The customer id: one customer's events stay ordered within a partition."
    return "The subscription id."


def build_document(topics: Iterable[str] | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for `topics` (default: every documented topic)."""
    contracts = load_contracts()
    wanted = set(topics) if topics is not None else None
    if wanted is not None:
        contracts = [c for c in contracts if c.topic in wanted]
    _, top = models_json_schema(
        [(c, "serialization") for c in contracts],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(sorted(top.get("$defs", {}).items()))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in sorted({c.topic for c in contracts}):
        on_topic = [c for c in contracts if c.topic == topic]
        cid = channel_id(topic)
        channels[cid] = {
            "address": topic,
            "title": TOPIC_TITLES.get(topic, topic),
            "description": f"Kafka topic `{topic}`. Key: {_key_description(on_topic[0])} "
            f"Consumed inside Kehu by: {_consumers_text(topic)}.",
            "messages": {
                message_id(c): {"$ref": f"#/components/messages/{message_id(c)}"} for c in on_topic
            },
            "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.5.0"}},
        }
        operations[f"publish.{cid}"] = {
            "action": "send",
            "title": f"Kehu publishes to {topic}",
            "summary": f"Every event on `{topic}`, in CloudEvents binary mode.",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{message_id(c)}"} for c in on_topic],
        }
        for reader in CONSUMERS.get(topic, ()):
            operations[f"{reader}.receive.{cid}"] = {
                "action": "receive",
                "title": f"The {reader} service consumes {topic}",
                "summary": f"Kehu's {reader} service reads `{topic}` (and skips the event "
                "types it does not use).",
                "channel": {"$ref": f"#/channels/{cid}"},
            }
        for c in on_topic:
            payload = example_payload(c, schemas)
            key = str(payload.get("customer_id") or payload.get("subscription_id"))
            event = example_event(c, payload)
            messages[message_id(c)] = {
                "name": c.event_type(),
                "title": c.event_type(),
                "summary": c.summary,
                "description": (f"{c.summary}\n\nCatalog page: `docs/events/{c.event_type()}.md`."),
                "contentType": "application/json",
                "headers": _headers_schema(c),
                "payload": {"$ref": f"#/components/schemas/{c.__name__}"},
                "correlationId": {
                    "description": "The CloudEvents id (deduplicate on it).",
                    "location": "$message.header#/ce_id",
                },
                "bindings": {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "format": "uuid",
                            "description": _key_description(c),
                        },
                        "bindingVersion": "0.5.0",
                    }
                },
                "examples": [
                    {
                        "name": "example",
                        "headers": {
                            f"ce_{k}": str(v)
                            for k, v in event.items()
                            if k not in ("data", "datacontenttype")
                        }
                        | {"content-type": "application/json"},
                        "payload": payload,
                        "summary": f"Kafka key: {key}",
                    }
                ],
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Kehu events",
            "version": DOCUMENT_VERSION,
            "description": (
                "Domain events of Kehu, the customer-management backend. Each service "
                "publishes to its own Kafka topic through a transactional outbox; the key is "
                "the customer id. Events are CloudEvents 1.0: binary mode on Kafka (`ce_*` "
                "headers, JSON data in the value), structured mode over HTTP (each service's "
                "`GET /events` feed and the signed webhooks of the subscriptions service). "
                "Events carry no personal data: only identifiers and non-identifying "
                "attributes.\n\n"
                f"Ordering and delivery:\n\n{ORDERING_TEXT}\n\nVersioning: {VERSIONING_TEXT}"
                f"\n\nReading the events: {READING_TEXT}"
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "Apache Kafka of the docker-compose deployment.",
            },
            "dev": {
                "host": "127.0.0.1:59092",
                "protocol": "kafka",
                "description": "The embedded (Tansu) broker of `make dev`; librdkafka-based "
                "clients need the settings under 'Reading the events' above.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def to_yaml(document: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        # Multi-line descriptions as literal blocks, so the YAML reads like the Markdown.
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# -- the event catalog -------------------------------------------------------------------------


def _type_label(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type_label(s) for s in schema[key])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_label(schema.get('items', {}))}"
    if schema.get("format"):
        return f"{kind} ({schema['format']})"
    return str(kind)


def _field_rows(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        bounds = [
            f"{word} {prop[key]}"
            for key, word in (("minimum", ">="), ("maximum", "<="))
            if key in prop
        ]
        description = " ".join([prop.get("description", ""), *bounds]).strip()
        description = description.replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| `{name}` | {_type_label(prop)} | {'yes' if name in required else 'no'} "
            f"| {description} |"
        )
    return rows


def catalog_page(cls: type[EventContract], document: dict[str, Any]) -> str:
    schemas = document["components"]["schemas"]
    schema = schemas[cls.__name__]
    message = document["components"]["messages"][message_id(cls)]
    payload = message["examples"][0]["payload"]
    event = example_event(cls, payload)
    nested = sorted(
        {ref.rsplit("/", 1)[-1] for ref in _refs(schema) if ref.rsplit("/", 1)[-1] != cls.__name__}
    )
    lines = [
        f"# `{cls.event_type()}`",
        "",
        cls.summary,
        "",
        "| | |",
        "|---|---|",
        f"| Kafka topic | `{cls.topic}` |",
        f"| Kafka key | {_key_description(cls)} |",
        f"| CloudEvents `type` | `{cls.event_type()}` |",
        f"| Version | {cls.event_version} |",
        f"| Webhook filter | `{cls.event_type()}`, or a wildcard such as "
        f"`kehu.{cls.event_name.split('.')[0]}.*` |",
        f"| Consumed inside Kehu | {_consumers_text(cls.topic)} |",
        "",
        "## When it is published",
        "",
        cls.summary,
        "",
        "It is written in the same database transaction as the change it reports, so it is "
        "published if and only if the change committed.",
        "",
        "## Payload (`data`)",
        "",
        "| field | type | required | description |",
        "|---|---|---|---|",
        *_field_rows(schema),
    ]
    for name in nested:
        lines += [
            "",
            f"### {name}",
            "",
            "| field | type | required | description |",
            "|---|---|---|---|",
            *_field_rows(schemas[name]),
        ]
    lines += [
        "",
        "## Example",
        "",
        "As a webhook body or in a `GET /events` feed page (structured CloudEvent):",
        "",
        "```json",
        json.dumps(event, indent=2),
        "```",
        "",
        "On Kafka (binary mode) the value is the `data` object above and the headers are:",
        "",
        "```",
        *(f"{k}: {v}" for k, v in message["examples"][0]["headers"].items()),
        "```",
        "",
        "## Ordering and delivery guarantees",
        "",
        ORDERING_TEXT,
        "",
        "## Versioning",
        "",
        VERSIONING_TEXT,
        "",
        "[All events](README.md) · [AsyncAPI document](../asyncapi.yaml)",
        "",
    ]
    return "\n".join(lines)


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def catalog_index(contracts: list[type[EventContract]]) -> str:
    lines = [
        "# Kehu event catalog",
        "",
        "Every event Kehu publishes, generated from the event contracts "
        "(`python -m shared.asyncapi --write docs/`). The machine-readable form is the "
        "[AsyncAPI 3.0 document](../asyncapi.yaml) ([JSON](../asyncapi.json)).",
        "",
    ]
    for topic in sorted({c.topic for c in contracts}):
        lines += [
            f"## `{topic}` — {TOPIC_TITLES.get(topic, topic)}",
            "",
            "| event type | published when |",
            "|---|---|",
        ]
        lines += [
            f"| [`{c.event_type()}`]({c.event_type()}.md) | {c.summary} |"
            for c in contracts
            if c.topic == topic
        ]
        lines.append("")
    lines += [
        "## Ordering and delivery guarantees",
        "",
        ORDERING_TEXT,
        "",
        "## Versioning",
        "",
        VERSIONING_TEXT,
        "",
    ]
    return "\n".join(lines)


# -- the developer portal ----------------------------------------------------------------------

PORTAL_INTRO = """\
Kehu is used three ways: its JSON APIs (one per service, each documented by OpenAPI), its
domain events on Kafka (documented by AsyncAPI), and, for systems that cannot read Kafka, signed
webhooks or a pull feed over HTTP."""

# People use the console, a web application over these same APIs (not an API itself).
CONSOLE_TEXT = """\
People (customer-service managers, agents, analysts) use the console at
<http://127.0.0.1:8000/>: the dashboard and the agent's workspace, read from these APIs with
the signed-in user's token."""

AUTH_TEXT = """\
Every endpoint except `/health/*`, `/metrics`, the docs and this portal needs
`Authorization: Bearer <jwt>`. The token carries a `role` (`admin`, `manager`, `agent`,
`analyst`, `integration`) that maps to scopes such as `customers:read`, and/or explicit scopes
in its `scope` claim. Each operation's OpenAPI description names the scope it needs; a missing
scope is a 403 `application/problem+json` naming it. On the dev stack, `make token
ROLE=integration` prints a token. Other systems should use the `integration` role: it reads the
event feeds (`events:read`) and manages webhook subscriptions (`subscriptions:read|write`)."""

FEEDS_TEXT = """\
Each service serves its own event log as structured CloudEvents at `GET /events?after=<cursor>`
(scope `events:read`): start with `after=0`, process the page, ask again with
`after=<next_after>`. Filter with `type=...` (repeatable). The log is kept for the retention
period, so a consumer behind a firewall can catch up after downtime."""

WEBHOOKS_TEXT = """\
The subscriptions service POSTs each matching event as a structured CloudEvent signed per the
[Standard Webhooks](https://www.standardwebhooks.com/) spec: headers `webhook-id`,
`webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`
keyed with the base64-decoded part of your `whsec_` secret; during a secret rotation several
space-separated signatures). Verify with any Standard Webhooks library, answer 2xx within the
timeout, and deduplicate on `webhook-id`. Failed deliveries are retried with exponential backoff
and jitter for about three days; `410 Gone` disables the subscription. Manage subscriptions,
read the delivery log, replay and ping at `/subscriptions` on the subscriptions service; a
ping POSTs a test event of type `kehu.webhook.ping.v1`. Bodies are
`application/cloudevents+json`; for each subscription one customer's events arrive one at a
time, in order."""


def portal_links(base: str = "http://127.0.0.1") -> list[tuple[str, str, str]]:
    return [
        (name, f"{base}:{port}/docs", f"{base}:{port}/openapi.json")
        for name, port in SERVICE_PORTS.items()
    ]


def portal_markdown(contracts: list[type[EventContract]]) -> str:
    lines = [
        "# Kehu developer portal",
        "",
        PORTAL_INTRO,
        "",
        CONSOLE_TEXT,
        "",
        "## APIs (OpenAPI)",
        "",
        "| service | interactive docs | OpenAPI JSON | event feed |",
        "|---|---|---|---|",
        *(
            f"| {name} | <{docs}> | <{spec}> | <{docs.removesuffix('/docs')}/events> |"
            for name, docs, spec in portal_links()
        ),
        "",
        "Ports are those of `make dev`; in production each service is behind your gateway.",
        "",
        "## Events",
        "",
        "- [AsyncAPI 3.0 document](asyncapi.yaml) ([JSON](asyncapi.json)), also served at "
        f"<http://127.0.0.1:{SERVICE_PORTS['subscriptions']}/asyncapi.yaml>.",
        f"- [Event catalog](events/README.md): one page per event type ({len(contracts)} types).",
        "",
        "## Pull feeds",
        "",
        FEEDS_TEXT,
        "",
        "## Webhooks",
        "",
        WEBHOOKS_TEXT,
        "",
        "## Authentication",
        "",
        AUTH_TEXT,
        "",
    ]
    return "\n".join(lines)


def generate(root: Path) -> dict[Path, str]:
    """Every generated file under `root` (the docs folder) with its content."""
    contracts = load_contracts()
    document = build_document()
    files = {
        root / "asyncapi.yaml": to_yaml(document),
        root / "asyncapi.json": to_json(document),
        root / "events" / "README.md": catalog_index(contracts),
        root / "portal.md": portal_markdown(contracts),
    }
    for cls in contracts:
        files[root / "events" / f"{cls.event_type()}.md"] = catalog_page(cls, document)
    return files


def stale_files(root: Path) -> list[str]:
    """Generated files whose committed copy differs, is missing, or should not exist."""
    files = generate(root)
    problems = [
        f"{path}: out of date"
        for path, text in files.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    events_dir = root / "events"
    if events_dir.exists():
        problems += [
            f"{path}: no longer generated"
            for path in sorted(events_dir.glob("*.md"))
            if path not in files
        ]
    return problems


def write(root: Path) -> list[Path]:
    files = generate(root)
    changed = []
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in sorted((root / "events").glob("*.md")):
        if path not in files:
            path.unlink()
            changed.append(path)
    return changed


# -- serving -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def served_document(topics: tuple[str, ...] | None = None) -> tuple[str, str]:
    """(JSON, YAML) of the document, built once per process: contracts are fixed at start."""
    document = build_document(topics)
    return to_json(document), to_yaml(document)


def docs_router(topics: Iterable[str] | None = None) -> APIRouter:
    """`/asyncapi.json` and `/asyncapi.yaml` (no auth), for any service to include."""
    router = APIRouter(tags=["docs"])
    wanted = tuple(sorted(topics)) if topics is not None else None

    @router.get(
        "/asyncapi.json",
        summary="AsyncAPI 3.0 document of Kehu's events (JSON)",
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def asyncapi_json() -> Response:
        """The AsyncAPI 3.0 document of every Kafka topic and event type, generated from the
        event contracts. No authentication needed."""
        return Response(served_document(wanted)[0], media_type="application/json")

    @router.get(
        "/asyncapi.yaml",
        summary="AsyncAPI 3.0 document of Kehu's events (YAML)",
        response_class=Response,
        responses={200: {"content": {"application/yaml": {"schema": {"type": "object"}}}}},
    )
    async def asyncapi_yaml() -> Response:
        """The same document as `/asyncapi.json`, in YAML. No authentication needed."""
        return PlainTextResponse(served_document(wanted)[1], media_type="application/yaml")

    return router


MARKDOWN: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}
}


def catalog_router() -> APIRouter:
    """The event catalog and the developer portal as served pages (no auth)."""
    router = APIRouter(tags=["docs"])

    @router.get(
        "/catalog",
        summary="Event catalog index (Markdown)",
        responses=MARKDOWN,
        response_class=Response,
    )
    async def catalog() -> Response:
        """Every event type by topic, linking a page per type. No authentication needed."""
        return Response(catalog_index(load_contracts()), media_type="text/markdown")

    @router.get(
        "/catalog/{event_type}",
        summary="One event type's catalog page (Markdown)",
        responses={**MARKDOWN, **problem_responses(404)},
        response_class=Response,
    )
    async def catalog_entry(event_type: str) -> Response:
        """When the event is published, its payload with an example, ordering and delivery
        guarantees, and the versioning policy. No authentication needed."""
        contracts = {c.event_type(): c for c in load_contracts()}
        cls = contracts.get(event_type.removesuffix(".md"))
        if cls is None:
            raise NotFound(f"No event type {event_type!r}; see /catalog for the list")
        return Response(catalog_page(cls, build_document()), media_type="text/markdown")

    @router.get("/portal", summary="Developer portal", response_class=HTMLResponse)
    async def portal() -> HTMLResponse:
        """One page linking every service's OpenAPI docs, the AsyncAPI document, the event
        catalog, the feeds, and how to authenticate. No authentication needed."""
        return HTMLResponse(portal_html(load_contracts()))

    return router


def portal_html(contracts: list[type[EventContract]]) -> str:
    import html

    def para(text: str) -> str:
        return f"<p>{html.escape(' '.join(text.split()))}</p>"

    rows = "".join(
        f"<tr><td>{name}</td><td><a href='{docs}'>{docs}</a></td>"
        f"<td><a href='{spec}'>openapi.json</a></td>"
        f"<td><code>{docs.removesuffix('/docs')}/events</code></td></tr>"
        for name, docs, spec in portal_links()
    )
    events = "".join(
        f"<li><a href='/catalog/{c.event_type()}'><code>{c.event_type()}</code></a> — "
        f"{html.escape(c.summary)}</li>"
        for c in contracts
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kehu developer portal</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td,th{{padding:.2rem .6rem;text-align:left}}code{{background:#f3f3f3}}</style></head><body>
<h1>Kehu developer portal</h1>
{para(PORTAL_INTRO)}
<p>The console for people: <a href="http://127.0.0.1:8000/">http://127.0.0.1:8000/</a>.</p>
<h2>APIs (OpenAPI)</h2>
<table><tr><th>service</th><th>docs</th><th>spec</th><th>event feed</th></tr>{rows}</table>
<h2>Events</h2>
<ul><li><a href="/asyncapi.yaml">AsyncAPI 3.0 document (YAML)</a> ·
<a href="/asyncapi.json">JSON</a></li><li><a href="/catalog">Event catalog</a></li></ul>
<ul>{events}</ul>
<h2>Pull feeds</h2>{para(FEEDS_TEXT)}
<h2>Webhooks</h2>{para(WEBHOOKS_TEXT)}
<h2>Authentication</h2>{para(AUTH_TEXT)}
</body></html>
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.asyncapi", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate the files")
    mode.add_argument("--check", action="store_true", help="fail if the files are stale")
    parser.add_argument("root", nargs="?", default="docs", type=Path)
    args = parser.parse_args(argv)
    if args.write:
        for path in write(args.root):
            print(f"wrote {path}")
        return 0
    problems = stale_files(args.root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(
            "The committed AsyncAPI document / event catalog is stale: run "
            "`python -m shared.asyncapi --write docs/` and commit the result.",
            file=sys.stderr,
        )
        return 1
    print(f"{args.root}: AsyncAPI document and event catalog are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
