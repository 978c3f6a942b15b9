"""The server secret: `settings.secret_key`, or one generated once and kept in `data_dir`.

Several workers may start at the same time: the file is created exclusively, and whoever
loses the race reads the winner's secret, so every worker seals with the same key.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from agenthost.errors import ConfigError
from agenthost.settings import Settings

SECRET_FILE = "secret_key"


def server_secret(settings: Settings) -> bytes:
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return _load_or_create(Path(settings.data_dir) / SECRET_FILE)


def _load_or_create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))
    return _read(path)


def _read(path: Path) -> bytes:
    # A racing worker may have created the file but not written it yet.
    for _ in range(50):
        value = path.read_text(encoding="ascii").strip()
        if value:
            return value.encode()
        time.sleep(0.02)
    raise ConfigError(f"config error: {path} holds no secret; delete it to regenerate")
