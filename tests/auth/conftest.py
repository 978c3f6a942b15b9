"""A fake OpenID issuer (discovery and JWKS over HTTP) for the OIDC token tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.process import start_process, stop_process
from tests.support.oidc import SigningKey, write_jwks

FAKES = Path(__file__).resolve().parents[1] / "fakes"


@dataclass
class Issuer:
    url: str
    base: str
    jwks_path: Path
    rsa: SigningKey
    ec: SigningKey

    def stats(self) -> dict[str, int]:
        reply = httpx.get(f"{self.base}/_stats", timeout=5)
        stats: dict[str, int] = reply.json()
        return stats


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    folder = tmp_path_factory.mktemp("issuer")
    rsa_key, ec_key = SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")
    jwks = folder / "jwks.json"
    write_jwks(jwks, [rsa_key, ec_key])
    proc, port = start_process(
        [str(FAKES / "oidc_issuer.py"), "--jwks", str(jwks), "--path", "/realms/acme"]
    )
    base = f"http://127.0.0.1:{port.strip()}"
    try:
        yield Issuer(f"{base}/realms/acme", base, jwks, rsa_key, ec_key)
    finally:
        stop_process(proc)
