"""Identifier formats (see DESIGN.md): prefixes make ids self-describing in logs and URLs."""

from __future__ import annotations

import secrets
import string

_URL_SAFE = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def agent_id() -> str:
    return "agent_" + _random(_URL_SAFE, 21)


def user_id() -> str:
    return "usr_" + _random(_ALNUM, 20)


def key_id() -> str:
    return "key_" + _random(_ALNUM, 20)


def prefixed(prefix: str) -> str:
    """`resp`, `msg`, `fc`, `fco`, `rs`, `chatcmpl`… + 32 hex characters."""
    return f"{prefix}_{secrets.token_hex(16)}"
