"""Identifier formats (see DESIGN.md): prefixes make ids self-describing in logs and URLs."""

from __future__ import annotations

import hashlib
import itertools
import os
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


def group_id() -> str:
    return "grp_" + _random(_ALNUM, 20)


def key_id() -> str:
    return "key_" + _random(_ALNUM, 20)


class _Tokens:
    """Unpredictable tokens without a system call each: a keyed BLAKE2b of a counter.

    Request-path ids are made several times per request; `os.urandom` releases the GIL,
    and under load each release let another thread take over the event loop's thread.
    Without the key (from `os.urandom`, new in every process) the outputs cannot be
    predicted, and the counter never repeats within a process.
    """

    def __init__(self) -> None:
        self._rekey()
        os.register_at_fork(after_in_child=self._rekey)

    def _rekey(self) -> None:
        self._key = os.urandom(32)
        self._counter = itertools.count()

    def hex(self, nbytes: int) -> str:
        counter = next(self._counter).to_bytes(8, "little")
        return hashlib.blake2b(counter, key=self._key, digest_size=nbytes).hexdigest()


_tokens = _Tokens()


def token(nbytes: int = 16) -> str:
    """`2 * nbytes` unpredictable hex characters (up to 64 bytes) for ids, not secrets."""
    return _tokens.hex(nbytes)


def prefixed(prefix: str) -> str:
    """`resp`, `msg`, `fc`, `fco`, `rs`, `chatcmpl`… + 32 hex characters."""
    return f"{prefix}_{_tokens.hex(16)}"
