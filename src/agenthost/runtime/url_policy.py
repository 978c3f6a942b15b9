"""Which media URLs a request may carry: no way in to our own networks (no SSRF).

agenthost passes `image_url` / `file_url` values to upstream providers and never fetches
them itself; an upstream that does fetch them (a self-hosted server next to us, or one
that follows redirects into its own network) must not be pointed at loopback, link-local
(cloud metadata at 169.254.169.254), private or reserved addresses through us.

The host checked is the one the WHATWG URL standard reads (as the clients upstream do;
Python's own parser once read `http://127.0.0.1:80\\@example.com/` as example.com), and a
URL that parsers could read differently (userinfo, backslashes, control characters, hosts
that differ between parsers) is refused. The rule: `data:` URLs pass; otherwise the scheme
is http or https and the host is neither such an address literally (in any spelling:
`127.1`, `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) nor a name that resolves to one. A name
that does not resolve here passes: we cannot reach it either, and the upstream that
fetches it resolves it in its own network, not ours.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import ada_url

from agenthost.errors import InvalidRequest

RESOLVE_TIMEOUT_SECONDS = 2.0
_ALLOWED_SCHEMES = ("http", "https")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def forbidden_address(address: IPAddress) -> bool:
    """Loopback, link-local, private, shared (CGNAT), reserved, multicast or unspecified."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return forbidden_address(mapped)
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


async def _resolve(host: str) -> list[IPAddress]:
    """Every address `host` resolves to here; [] when it does not resolve in time."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, TimeoutError, UnicodeError):
        return []
    found = []
    for info in infos:
        literal = _literal(str(info[4][0]))
        if literal is not None:
            found.append(literal)
    return found


def _refuse(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {why}", code="invalid_url", param=param)


def _whatwg_host(url: str, param: str) -> str:
    """The host as the WHATWG URL standard reads it (what browsers, Node's fetch and most
    HTTP clients upstream do: percent-decoded, numeric IPv4 forms normalised, IDNA),
    refusing what parsers read differently: userinfo, backslashes, control characters,
    and any URL whose host Python's parser sees otherwise."""
    if "\\" in url or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise _refuse(param, "backslashes, spaces and control characters are not allowed.")
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        raise _refuse(param, "not a valid URL.") from None
    if parsed.protocol not in ("http:", "https:"):
        raise _refuse(param, "only https://, http:// and data: URLs are accepted.")
    if parsed.username or parsed.password:
        raise _refuse(param, "URLs with a user name or password are not accepted.")
    host = parsed.hostname.strip("[]").rstrip(".").lower()
    try:
        other = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        other = ""
    if other != host and _literal(other) != _literal(host):
        raise _refuse(param, "the URL's host is ambiguous.")
    return host


async def check_url(url: str, param: str) -> None:
    """Raise `InvalidRequest` (naming `param`) unless `url` may be passed upstream."""
    if url[:5].lower() == "data:":
        return
    host = _whatwg_host(url.strip(), param)
    if not host:
        raise _refuse(param, "the URL has no host.")
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        raise _refuse(param, "URLs may not point at this host.")
    literal = _literal(host)
    addresses = [literal] if literal is not None else await _resolve(host)
    if any(forbidden_address(a) for a in addresses):
        raise _refuse(param, "URLs may not point at loopback, link-local or private addresses.")


async def check_urls(urls: Iterable[tuple[str, str]]) -> None:
    """Check each `(param, url)`; the first refused one raises."""
    for param, url in urls:
        await check_url(url, param)
