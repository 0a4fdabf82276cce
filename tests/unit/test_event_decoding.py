"""Kafka records read undecoded (`from_kafka(..., decode_data=False)`) give analytics the same
contracts as decoded ones, and a bad payload still fails validation."""

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.analytics.projection import parse, validate_ahead
from shared.contracts import interactions as ic
from shared.events.envelope import CloudEvent, MalformedEvent, from_kafka, to_kafka, uuid7
from shared.outbox import build_event


def _record() -> tuple[bytes, list[tuple[str, bytes]]]:
    event = build_event(
        ic.PurchaseRecorded(
            customer_id=uuid.uuid4(),
            occurred_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
            purchase_id=uuid.uuid4(),
            external_ref="R-1",
            amount=Decimal("30.10"),
            cost=Decimal("20.05"),
            margin=Decimal("10.05"),
            currency="CNY",
            status="paid",
        ),
        "/kehu/interactions",
    )
    _, value, headers = to_kafka(event)
    return value, headers


def test_undecoded_record_keeps_its_bytes_and_no_data() -> None:
    value, headers = _record()
    event = from_kafka(value, headers, decode_data=False)
    assert event.raw_data == value
    assert event.data == {}
    assert from_kafka(value, headers).raw_data is None


def test_undecoded_and_decoded_records_parse_to_the_same_contract() -> None:
    value, headers = _record()
    raw, decoded = (
        parse([from_kafka(value, headers, decode_data=False)]),
        parse([from_kafka(value, headers)]),
    )
    assert raw == decoded
    assert isinstance(raw[0], ic.PurchaseRecorded)
    assert raw[0].amount == Decimal("30.10")


def test_undecoded_record_with_bad_json_fails_when_parsed() -> None:
    _, headers = _record()
    with pytest.raises(MalformedEvent):
        from_kafka(b"not json", headers)
    event = from_kafka(b"not json", headers, decode_data=False)
    with pytest.raises(ValidationError):
        parse([event])


def test_undecoded_record_without_headers_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        from_kafka(b"{}", [("ce_type", b"kehu.purchase.recorded.v1")], decode_data=False)


def test_validated_ahead_record_parses_to_the_contract_it_was_validated_to() -> None:
    value, headers = _record()
    event = from_kafka(value, headers, decode_data=False)
    validate_ahead([event])
    assert event.payload is not None
    assert parse([event]) == [event.payload] == parse([from_kafka(value, headers)])


def test_invalid_payload_is_left_for_the_batch_to_fail_on() -> None:
    _, headers = _record()
    event = from_kafka(b'{"customer_id": "not a uuid"}', headers, decode_data=False)
    validate_ahead([event])  # no error here: the consumer parks it from inside the batch
    assert event.payload is None
    with pytest.raises(ValidationError):
        parse([event])


@pytest.mark.parametrize("decode_data", [False, True])
def test_record_names_its_missing_headers_and_keeps_extension_attributes(
    decode_data: bool,
) -> None:
    value, headers = _record()
    without_source = [(n, v) for n, v in headers if n != "ce_source"]
    with pytest.raises(MalformedEvent, match=r"^missing CloudEvents headers: ce_source$"):
        from_kafka(value, without_source, decode_data=decode_data)

    event = from_kafka(
        value,
        [*headers, ("ce_traceparent", b"00-abc-01"), ("x-other", b"1")],
        decode_data=decode_data,
    )
    assert event.model_extra == {"traceparent": "00-abc-01"}
    assert event.source == "/kehu/interactions"


@pytest.mark.parametrize("decode_data", [False, True])
def test_record_with_a_bad_envelope_attribute_is_malformed(decode_data: bool) -> None:
    value, headers = _record()
    bad_version = [(n, b"0.3" if n == "ce_specversion" else v) for n, v in headers]
    with pytest.raises(MalformedEvent):
        from_kafka(value, bad_version, decode_data=decode_data)


def test_event_ids_are_version_7_uuids_that_sort_by_the_time_they_were_made() -> None:
    earlier = uuid7()
    time.sleep(0.002)
    later = uuid.UUID(CloudEvent(source="/kehu/test", type="kehu.test.v1").id)
    for made in (earlier, later):
        assert made.version == 7 and made.variant == uuid.RFC_4122
    assert earlier < later and str(earlier) < str(later)  # as uuid and as the inbox's text
    # The first 48 bits are the Unix time in milliseconds.
    assert abs((later.int >> 80) - time.time_ns() // 1_000_000) < 5_000
    assert len({uuid7() for _ in range(10_000)}) == 10_000
