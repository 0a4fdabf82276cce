"""The AsyncAPI document, the event catalog and the committed docs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from shared import asyncapi
from shared.contracts import DOMAIN_TOPICS
from shared.events.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
# The official AsyncAPI 3.0.0 JSON schema (Apache-2.0, from the AsyncAPI Initiative's
# `@asyncapi/specs` package; see ASYNCAPI-SCHEMA-NOTICE.md beside it).
SCHEMA = Path(__file__).with_name("asyncapi-3.0.0.schema.json")


@pytest.fixture(scope="module")
def document() -> dict:
    return asyncapi.build_document()


def test_document_validates_against_the_asyncapi_3_schema(document: dict) -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"


def test_schema_check_rejects_an_invalid_document(document: dict) -> None:
    """The validation above can fail: a v2-style operation is not AsyncAPI 3."""
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    broken = {**document, "operations": {"x": {"action": "publish", "channel": {}}}}
    assert list(validator.iter_errors(broken))


def test_every_contract_is_documented_with_a_valid_example(document: dict) -> None:
    contracts = asyncapi.load_contracts()
    documented_types = {c.event_type() for c in contracts}
    domain_types = {c.event_type() for c in REGISTRY if c.topic in DOMAIN_TOPICS}
    assert domain_types - documented_types == {t for t in domain_types if ".test." in t}
    for topic in DOMAIN_TOPICS:
        assert document["channels"][topic.removeprefix("kehu.")]["address"] == topic
    messages = document["components"]["messages"]
    for cls in contracts:
        message = messages[cls.event_type()]
        example = message["examples"][0]
        cls.model_validate(example["payload"])  # a payload Kehu could publish
        assert example["headers"]["ce_type"] == cls.event_type()
        assert message["payload"] == {"$ref": f"#/components/schemas/{cls.__name__}"}
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    # Every $ref resolves inside the document.
    for ref in asyncapi._refs(document):
        node: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict) and part in node, ref
            node = node[part]


def test_test_only_contracts_stay_out_of_the_document() -> None:
    from tests.helpers import make_contract

    stray = make_contract("kehu.customers")
    assert stray.event_type() not in asyncapi.build_document()["components"]["messages"]


def test_committed_docs_are_up_to_date() -> None:
    """CI's staleness check: `python -m shared.asyncapi --check docs/`."""
    assert asyncapi.stale_files(ROOT / "docs") == []


def test_check_mode_fails_on_a_stale_copy(tmp_path: Path) -> None:
    asyncapi.write(tmp_path)
    assert asyncapi.main(["--check", str(tmp_path)]) == 0
    page = tmp_path / "events" / "kehu.complaint.received.v1.md"
    page.write_text(page.read_text() + "edited by hand\n")
    (tmp_path / "events" / "kehu.gone.v1.md").write_text("an event that no longer exists")
    stale = asyncapi.stale_files(tmp_path)
    assert any("kehu.complaint.received.v1.md: out of date" in s for s in stale)
    assert any("kehu.gone.v1.md: no longer generated" in s for s in stale)
    assert asyncapi.main(["--check", str(tmp_path)]) == 1


def test_catalog_page_says_when_payload_ordering_and_versioning() -> None:
    cls = REGISTRY.get("kehu.complaint.resolved.v1")
    page = asyncapi.catalog_page(cls, asyncapi.build_document())
    for heading in (
        "## When it is published",
        "## Payload (`data`)",
        "## Example",
        "## Ordering and delivery guarantees",
        "## Versioning",
    ):
        assert heading in page
    assert "| `resolution_met` | boolean | yes |" in page
    assert '"type": "kehu.complaint.resolved.v1"' in page


def test_consumers_listed_match_the_services_topic_settings() -> None:
    from services.analytics.config import Settings as AnalyticsSettings
    from services.outreach import consumers as outreach_consumers
    from services.outreach.config import Settings as OutreachSettings
    from shared.asyncapi import CONSUMERS
    from shared.contracts import DOMAIN_TOPICS

    def read_by(service: str) -> set[str]:
        return {topic for topic, readers in CONSUMERS.items() if service in readers}

    assert read_by("analytics") == set(AnalyticsSettings().consumed_topics)
    assert "kehu.loyalty" in read_by("analytics")  # the membership level in the insights
    assert read_by("outreach") == set(outreach_consumers.topics(OutreachSettings()))
    assert read_by("subscriptions") == set(DOMAIN_TOPICS)
