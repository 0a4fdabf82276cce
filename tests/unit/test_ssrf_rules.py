"""SSRF rules for webhook targets: only public https, unless the allow-list names the network."""

from __future__ import annotations

import ipaddress

import pytest

from services.subscriptions.errors import UnsafeTarget
from services.subscriptions.safety import MAX_URL_LENGTH, check_target, parse_networks
from shared.problems import ProblemError


async def test_loopback_needs_the_allow_list_and_public_targets_need_https() -> None:
    with pytest.raises(ProblemError, match="loopback"):
        await check_target("http://127.0.0.1:8080/hook", [])
    with pytest.raises(ProblemError, match="loopback"):
        await check_target("http://localhost:8080/hook", [])  # resolved, not just parsed
    await check_target("http://127.0.0.1:8080/hook", parse_networks(["127.0.0.0/8"]))
    with pytest.raises(ProblemError, match="https"):
        await check_target("http://93.184.216.34/hook", [])
    await check_target("https://93.184.216.34/hook", [])  # checked only; nothing is sent
    with pytest.raises(ProblemError, match="Credentials"):
        await check_target("https://user:pw@93.184.216.34/hook", [])


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://192.168.1.10/hook",
        "https://172.16.0.1/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata (link-local)
        "https://[::1]:8080/hook",
        "https://[::ffff:10.0.0.1]/hook",  # a private IPv4 address dressed as IPv6
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",  # multicast
        "https://240.0.0.1/hook",  # reserved
    ],
)
async def test_private_loopback_link_local_and_reserved_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget) as refused:
        await check_target(url, [])
    assert refused.value.status == 422 and refused.value.extensions["field"] == "url"
    assert refused.value.extensions["refused_addresses"]


async def test_the_allow_list_must_cover_the_address_not_just_be_set() -> None:
    allowed = parse_networks(["10.1.0.0/16"])
    assert await check_target("http://10.1.2.3/hook", allowed) == [ipaddress.ip_address("10.1.2.3")]
    with pytest.raises(UnsafeTarget, match="private"):
        await check_target("http://10.2.0.1/hook", allowed)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://93.184.216.34/hook", "http"),
        ("https:///no-host", "http"),
        ("https://93.184.216.34:99999/hook", "port"),
        ("https://93.184.216.34/" + "x" * MAX_URL_LENGTH, "longer than"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
async def test_malformed_targets_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(UnsafeTarget, match=problem):
        await check_target(url, [])
