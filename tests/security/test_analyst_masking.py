"""The analyst role never receives a customer's unmasked e-mail or phone, from any GET of any
service, whatever the endpoint returns (details, lists, timelines, exports, feeds)."""

from __future__ import annotations

import httpx
import pytest

from tests.security.conftest import Stack
from tests.security.stack import Operation, Seeded, headers, leaks, operations, request_of

# The shared stack may first work through other tests' backlog (see stack.settle).
pytestmark = pytest.mark.timeout(600)

READS = [op for op in operations() if op.method == "get" and not op.public]
ANALYST = headers("analyst", subject="analyst-1")
INTEGRATION = headers("integration", subject="erp-connector")


async def analyst_reads(
    stack: Stack, seeded: Seeded, op: Operation, caller: dict[str, str] = ANALYST
) -> list[httpx.Response]:
    """The caller's answers to `op`, about the seeded customer where the op takes ids."""
    path, query = request_of(op, seeded.ids)
    # Lists filtered to the seeded customer (and unfiltered lists too) must mask as well.
    for param in op.parameters("query"):
        if param["name"] in seeded.ids:
            query[param["name"]] = seeded.ids[param["name"]]
    client = stack.clients[op.service]
    responses = [await client.get(path, params=query, headers=caller)]
    if query and not any(p.get("required") for p in op.parameters("query")):
        responses.append(await client.get(path, headers=caller))
    if op.path == "/events":
        responses.append(
            await client.get(path, params={"after": "0", "limit": 1000}, headers=caller)
        )
    for response in responses:
        assert response.status_code < 500, f"{op.id}: {response.status_code} {response.text[:300]}"
    return responses


def assert_no_leak(op: Operation, responses: list[httpx.Response], pii: list[str]) -> None:
    for response in responses:
        found = leaks(response.text, pii)
        assert not found, (
            f"{op.id} ({response.request.url}) answered the analyst "
            f"{response.status_code} with unmasked {found}: {response.text[:500]}"
        )


@pytest.mark.parametrize("op", READS, ids=lambda op: op.id)
async def test_analyst_never_sees_unmasked_email_or_phone(
    stack: Stack, seeded: Seeded, op: Operation
) -> None:
    responses = await analyst_reads(stack, seeded, op)
    assert_no_leak(op, responses, [*seeded.emails, *seeded.phones])


@pytest.mark.parametrize("op", READS, ids=lambda op: op.id)
async def test_integration_without_pii_read_never_sees_unmasked_email_or_phone(
    stack: Stack, seeded: Seeded, op: Operation
) -> None:
    """Other systems hold no `pii:read` unless granted: they get the analyst's masking."""
    responses = await analyst_reads(stack, seeded, op, INTEGRATION)
    assert_no_leak(op, responses, [*seeded.emails, *seeded.phones])


@pytest.mark.parametrize("op", READS, ids=lambda op: op.id)
async def test_analyst_never_sees_a_persons_name_email_phone_or_address(
    stack: Stack, seeded_person: Seeded, op: Operation
) -> None:
    responses = await analyst_reads(stack, seeded_person, op)
    assert_no_leak(op, responses, seeded_person.pii)


async def test_the_analyst_reads_the_records_themselves(stack: Stack, seeded: Seeded) -> None:
    """Control: the analyst is not simply refused; the masked reads return the records."""
    for service, path in [
        ("profiles", f"/customers/{seeded.customer['id']}"),
        ("interactions", f"/interactions/{seeded.interaction['id']}"),
        ("interactions", f"/purchases/{seeded.purchase['id']}"),
        ("complaints", f"/complaints/{seeded.complaint['id']}"),
    ]:
        response = await stack.clients[service].get(path, headers=ANALYST)
        assert response.status_code == 200, f"{service} {path}: {response.text}"
        assert seeded.customer["id"] in response.text


async def test_the_same_reads_show_the_pii_to_an_admin(stack: Stack, seeded: Seeded) -> None:
    """Control: the masked reads above are masked, not empty (the data is there for pii:read)."""
    admin = headers("admin")
    customer = await stack.clients["profiles"].get(
        f"/customers/{seeded.customer['id']}", headers=admin
    )
    assert customer.status_code == 200
    assert leaks(customer.text, seeded.emails[:1]), customer.text
    complaint = await stack.clients["complaints"].get(
        f"/complaints/{seeded.complaint['id']}", headers=admin
    )
    assert complaint.status_code == 200
    assert leaks(complaint.text, seeded.emails[:1]), complaint.text
