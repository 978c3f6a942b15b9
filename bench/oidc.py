"""`--oidc`: the benchmark calls with an OIDC bearer token instead of an API key.

The fake upstream publishes discovery and a JWKS under `/oidc` (`--jwks FILE`); the
benchmark signs one token for its user with the private key, so every request pays the
token path (with the keys and the checked token cached, as in production)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AUDIENCE = "agenthost-bench"
KID = "bench-1"


class Signer:
    def __init__(self, folder: Path) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        self.jwks_path = folder / "jwks.json"
        self.jwks_path.write_text(json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig"}]}))

    def token(self, issuer: str, email: str) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": AUDIENCE,
            "sub": f"bench-{email}",
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + 6 * 3600,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KID})


def issuer_of(upstream_url: str) -> str:
    return upstream_url.removesuffix("/v1") + "/oidc"


def auth_section(upstream_url: str) -> dict[str, Any]:
    api = {"enabled": True, "audience": AUDIENCE}
    return {"oidc": {"issuer": issuer_of(upstream_url), "api": api}}
