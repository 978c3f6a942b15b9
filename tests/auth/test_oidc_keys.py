"""The issuer's signing keys, read over real HTTP from the fake issuer with a clock the
test moves: rotation, the refetch bound, and keys that must never be used."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from agenthost.auth.oidc_keys import REFETCH_SECONDS, SigningKeys
from agenthost.errors import IdentityProviderUnavailable
from tests.auth.conftest import Issuer
from tests.support.oidc import SigningKey, write_jwks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as made:
        yield made


@pytest.fixture
def restore_jwks(issuer: Issuer) -> Iterator[Path]:
    original = issuer.jwks_path.read_text()
    yield issuer.jwks_path
    issuer.jwks_path.write_text(original)


async def test_rotation_is_picked_up_within_the_refetch_bound(
    issuer: Issuer, client: httpx.AsyncClient, restore_jwks: Path
) -> None:
    clock = Clock()
    keys = SigningKeys(issuer.url, client, clock)
    assert await keys.key_for("rsa-1", "RS256") is not None
    assert keys.fetches == 1
    rotated = SigningKey.rsa("rsa-2")
    write_jwks(restore_jwks, [rotated, issuer.ec])
    clock.now += 5
    assert await keys.key_for("rsa-2", "RS256") is None  # within the bound: not read again
    assert keys.fetches == 1
    clock.now += REFETCH_SECONDS
    assert await keys.key_for("rsa-2", "RS256") is not None
    assert keys.fetches == 2
    assert await keys.key_for("rsa-1", "RS256") is None  # the retired key is gone


async def test_concurrent_misses_share_one_read(issuer: Issuer, client: httpx.AsyncClient) -> None:
    keys = SigningKeys(issuer.url, client, Clock())
    found = await asyncio.gather(*(keys.key_for(f"made-up-{i}", "RS256") for i in range(50)))
    assert found == [None] * 50
    assert keys.fetches == 1


async def test_symmetric_and_mismatched_keys_are_never_used(
    issuer: Issuer, client: httpx.AsyncClient, restore_jwks: Path
) -> None:
    jwks = json.loads(restore_jwks.read_text())
    jwks["keys"] += [
        {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"},
        {**issuer.rsa.public_jwk(), "kid": "rsa-enc", "use": "enc"},
        {**issuer.rsa.public_jwk(), "kid": "rsa-hs", "alg": "HS256"},
        {**issuer.rsa.public_jwk(), "kid": "rsa-384", "alg": "RS384"},
        {**SigningKey.rsa("rsa-other").public_jwk()},
    ]
    restore_jwks.write_text(json.dumps(jwks))
    keys = SigningKeys(issuer.url, client, Clock())
    assert await keys.key_for("hs", "RS256") is None
    assert await keys.key_for("rsa-enc", "RS256") is None
    assert await keys.key_for("rsa-hs", "RS256") is None
    assert await keys.key_for("rsa-384", "RS256") is None  # the key names its algorithm
    assert await keys.key_for("rsa-384", "RS384") is not None
    assert await keys.key_for("ec-1", "ES384") is None  # a P-256 key signs ES256 only
    assert await keys.key_for("ec-1", "ES256") is not None
    assert await keys.key_for(None, "RS256") is None  # several RSA keys: a kid is needed


async def test_discovery_must_name_the_configured_issuer(
    issuer: Issuer, client: httpx.AsyncClient
) -> None:
    # Discovery is found at the same place, but the provider calls itself without the
    # slash: tokens would carry that `iss`, so the configuration is refused, not guessed.
    keys = SigningKeys(issuer.url + "/", client, Clock())
    with pytest.raises(IdentityProviderUnavailable):
        await keys.key_for("rsa-1", "RS256")
