"""Signing keys and tokens for OIDC tests: the private half of what the fake issuer
(tests/fakes/oidc_issuer.py) publishes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "agenthost-api"
SCOPE = "agents.invoke"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig"}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        if headers["kid"] is None:
            del headers["kid"]
        alg = headers.pop("alg", self.alg)
        return jwt.encode(claims, self.private, algorithm=alg, headers=headers)


def write_jwks(path: Path, keys: list[SigningKey]) -> None:
    path.write_text(json.dumps({"keys": [key.public_jwk() for key in keys]}))


def claims(issuer: str, subject: str, email: str | None = None, **extra: Any) -> dict[str, Any]:
    """A token a real provider would issue for `subject`, valid for five minutes."""
    now = int(time.time())
    made: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": now,
        "exp": now + 300,
        "scope": f"openid {SCOPE}",
    }
    if email is not None:
        made |= {"email": email, "email_verified": True}
    return made | extra


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], header: dict[str, Any]) -> str:
    """A token built by hand: `alg: none`, or an HMAC keyed with whatever the attacker has."""
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(payload).encode())
    return f"{head}.{body}."


def hmac_signed(payload: dict[str, Any], kid: str, secret: bytes) -> str:
    """HS256 with `secret` as the key: the classic attack uses the issuer's public key."""
    signing_input = unsigned(payload, {"alg": "HS256", "typ": "JWT", "kid": kid})[:-1]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"
