"""The client's address: the connection's peer, or, when that peer is a proxy named in
`trusted_proxies`, the address the proxies recorded in `X-Forwarded-For` (read from the
right, skipping trusted proxies). Anyone else's `X-Forwarded-For` is ignored: a client
could otherwise claim a new address per request (unlimited sign-in attempts)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import HTTPConnection

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(trusted: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def is_secure(connection: HTTPConnection, trusted: tuple[Network, ...]) -> bool:
    """Whether the client reached us over TLS: directly, or through a trusted proxy that
    says so in `X-Forwarded-Proto`."""
    if connection.url.scheme in ("https", "wss"):
        return True
    peer = connection.client.host if connection.client else ""
    proto = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return proto == "https" and _trusted(peer, trusted)


def trusted_of(connection: HTTPConnection) -> tuple[Network, ...]:
    """The app's `trusted_proxies`, parsed once at start (create_app)."""
    found = getattr(connection.app.state, "trusted_proxies", ())
    return found if isinstance(found, tuple) else ()


def client_address(connection: HTTPConnection, trusted: tuple[Network, ...]) -> str:
    peer = connection.client.host if connection.client else "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    forwarded = ",".join(connection.headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop[:64]
    return hops[0][:64] if hops else peer
