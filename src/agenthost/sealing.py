"""Symmetric keys derived from the server secret, one per purpose.

Each purpose (compaction items, per-user secrets, …) gets its own Fernet key
(AES-128-CBC + HMAC-SHA256), derived with HKDF-SHA256 from the server secret and a
purpose label, so a token sealed for one purpose never opens as another. Rotating the
server secret makes everything sealed before it unreadable.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derived_fernet(secret: bytes, purpose: bytes) -> Fernet:
    """The Fernet key for `purpose` under the server secret `secret`."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))
