"""An OpenID issuer's signing keys: discovery and the JWKS, cached in-process.

Discovery is read once. The JWKS is read on first use and again when a token names a key
id it lacks (the issuer rotated its keys), at most once per `REFETCH_SECONDS`, so a flood
of made-up key ids reaches the identity provider no more often than that. Only asymmetric
keys are kept: a token can never be checked with an HMAC secret or with no key at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError

from agenthost.errors import IdentityProviderUnavailable

log = logging.getLogger(__name__)

REFETCH_SECONDS = 30.0
FETCH_TIMEOUT = 5.0
# Signature algorithms a token may use, by the key type that verifies them.
ALGORITHMS: dict[str, str] = {
    **{f"RS{bits}": "RSA" for bits in (256, 384, 512)},
    **{f"PS{bits}": "RSA" for bits in (256, 384, 512)},
    **{f"ES{bits}": "EC" for bits in (256, 384, 512)},
}


class SigningKeys:
    """The keys of one issuer, looked up by key id (`kid`) and algorithm."""

    def __init__(
        self,
        issuer: str,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._client = client
        self._clock = clock
        self._discovery: dict[str, Any] | None = None
        self._keys: list[tuple[str | None, str | None, PyJWK]] = []  # (kid, alg, key)
        self._fetched_at: float | None = None
        self._failed = False
        self._lock = asyncio.Lock()
        self.fetches = 0  # JWKS reads, for tests and the log

    async def aclose(self) -> None:
        await self._client.aclose()

    async def discovery(self) -> dict[str, Any]:
        """The issuer's OpenID configuration, whose `issuer` must be the configured one."""
        if self._discovery is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = await self._get_json(url)
            if document.get("issuer") != self.issuer or not document.get("jwks_uri"):
                log.warning("OIDC discovery at %s names another issuer or no jwks_uri", url)
                raise IdentityProviderUnavailable(
                    "The identity provider's configuration does not match this server's."
                )
            self._discovery = document
        return self._discovery

    async def key_for(self, kid: str | None, alg: str) -> PyJWK | None:
        """The key that verifies a token with this header, reading the JWKS when none is
        known yet or `kid` is new (within the refetch bound); None: no such key."""
        found = self._find(kid, alg)
        if found is None:
            await self._refresh()
            found = self._find(kid, alg)
        return found

    def _find(self, kid: str | None, alg: str) -> PyJWK | None:
        matches = [
            key
            for key_id, key_alg, key in self._keys
            if _fits(key, key_alg, alg) and (kid is None or key_id == kid)
        ]
        # Without a kid the choice must be unambiguous.
        return matches[0] if len(matches) == 1 or (kid is not None and matches) else None

    async def _refresh(self) -> None:
        async with self._lock:  # concurrent misses share one read
            now = self._clock()
            if self._fetched_at is not None and now - self._fetched_at < REFETCH_SECONDS:
                if self._failed:
                    raise _unavailable()
                return
            self._fetched_at = now
            try:
                discovery = await self.discovery()
                document = await self._get_json(str(discovery["jwks_uri"]))
                self.fetches += 1
            except IdentityProviderUnavailable:
                self._failed = True
                raise
            self._failed = False
            self._keys = _signing_keys(document)
            log.info("read %d signing keys of %s", len(self._keys), self.issuer)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            reply = await self._client.get(url, timeout=FETCH_TIMEOUT)
            reply.raise_for_status()
            document = reply.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("identity provider unreachable at %s: %s", url, exc)
            raise _unavailable() from exc
        if not isinstance(document, dict):
            raise _unavailable()
        return document


def _fits(key: PyJWK, key_alg: str | None, alg: str) -> bool:
    """Whether `key` may verify a signature made with `alg`."""
    if key.key_type != ALGORITHMS.get(alg) or key_alg not in (None, alg):
        return False
    # An EC key belongs to one curve, hence one algorithm (P-256: ES256).
    return key.key_type != "EC" or key.algorithm_name == alg


def _unavailable() -> IdentityProviderUnavailable:
    return IdentityProviderUnavailable(
        "The identity provider cannot be reached to check this token; try again, or use an API key."
    )


def _signing_keys(document: dict[str, Any]) -> list[tuple[str | None, str | None, PyJWK]]:
    kept = []
    for entry in document.get("keys") or []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        alg = entry.get("alg")
        if entry.get("kty") not in {"RSA", "EC"} or (alg is not None and alg not in ALGORITHMS):
            continue  # symmetric, unknown or not for our algorithms: never used
        try:
            key = PyJWK(entry, algorithm=alg)
        except PyJWKError:
            continue
        kid = entry.get("kid")
        kept.append((kid if isinstance(kid, str) else None, alg, key))
    return kept
