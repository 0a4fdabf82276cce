"""SSRF protection: Kehu calls only public https endpoints, unless an allow-list says otherwise.

The host is resolved and every address it resolves to is checked (a name that resolves to a
private address is as dangerous as the address itself). The check runs when a subscription is
saved and again before every attempt, since DNS answers change; the attempt then connects to
the address that was checked (TLS still verifies the certificate against the host name), so a
second, different DNS answer cannot redirect it (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from services.subscriptions.errors import UnsafeTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2048


def parse_networks(cidrs: list[str]) -> list[Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def _is_public(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _is_public(ip.ipv4_mapped)
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


async def resolve(host: str, port: int, timeout: float = 5.0) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise UnsafeTarget(f"The host {host!r} does not resolve: {exc}", field="url") from exc
    return sorted({ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}, key=str)


async def check_target(url: str, allowed: list[Network]) -> list[IPAddress]:
    """The addresses `url` may be called at; raise `UnsafeTarget` unless it may be called."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"The URL is longer than {MAX_URL_LENGTH} characters", field="url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("The URL must be http(s)://host/...", field="url")
    if parts.username or parts.password:
        raise UnsafeTarget("Credentials in the URL are not accepted", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget(f"Invalid port: {exc}", field="url") from exc
    addresses = await resolve(parts.hostname, port)
    if not addresses:
        raise UnsafeTarget(f"The host {parts.hostname!r} does not resolve", field="url")
    listed = all(any(ip in net for net in allowed) for ip in addresses)
    if listed:
        return addresses
    refused = [str(ip) for ip in addresses if not _is_public(ip)]
    if refused:
        raise UnsafeTarget(
            f"{parts.hostname} resolves to a private, loopback, link-local or reserved address "
            f"({', '.join(refused)}); such targets need the webhook allow-list setting",
            field="url",
            refused_addresses=refused,
        )
    if parts.scheme != "https":
        raise UnsafeTarget("Public webhook URLs must use https", field="url")
    return addresses
