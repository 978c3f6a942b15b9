"""Sealing compaction items: a conversation only this server (and only its owner) can reopen.

A compaction item's `encrypted_content` is a Fernet token (AES-128-CBC + HMAC-SHA256) over
zlib-compressed JSON `{"v": 1, "user": <user id>, "items": [...]}`. The Fernet key is
derived with HKDF from the server secret, so rotating the secret invalidates old items.
The user id inside the token keeps one user from replaying another user's compaction.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from cryptography.fernet import InvalidToken

from agenthost.errors import InvalidRequest
from agenthost.sealing import derived_fernet

_VERSION = 1
_INFO = b"agenthost open-responses compaction v1"
MAX_OPENED_BYTES = 64 * 1024 * 1024


class CompactionSealer:
    """Seals and opens compaction payloads with a key derived from the server secret."""

    def __init__(self, secret: bytes) -> None:
        self._fernet = derived_fernet(secret, _INFO)

    def seal(self, items: list[dict[str, Any]], user_id: str) -> str:
        payload = orjson.dumps({"v": _VERSION, "user": user_id, "items": items})
        return self._fernet.encrypt(zlib.compress(payload)).decode()

    def open(self, token: str, user_id: str, param: str) -> list[dict[str, Any]]:
        """The sealed items; a 400 naming `param` if the token is not ours or not theirs."""
        try:
            compressed = self._fernet.decrypt(token.encode())
            inflater = zlib.decompressobj()
            raw = inflater.decompress(compressed, MAX_OPENED_BYTES)
            if inflater.unconsumed_tail:
                raise ValueError("too large")
            payload = orjson.loads(raw)
        except (InvalidToken, ValueError, zlib.error) as exc:
            raise _invalid(param) from exc
        if (
            not isinstance(payload, dict)
            or payload.get("v") != _VERSION
            or payload.get("user") != user_id
            or not isinstance(payload.get("items"), list)
        ):
            raise _invalid(param)
        items: list[dict[str, Any]] = payload["items"]
        return items


def _invalid(param: str) -> InvalidRequest:
    return InvalidRequest(
        "The compaction item's encrypted_content could not be opened by this server.",
        code="invalid_encrypted_content",
        param=param,
    )
