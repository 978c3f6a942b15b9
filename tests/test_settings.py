"""Configuration: one YAML file, `AGENTHOST_<SECTION>__<KEY>` overrides, `${ENV}` secrets,
and a bad config that stops `agenthost serve` before anything listens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agenthost.errors import ConfigError
from agenthost.settings import load_settings
from tests.support.server import free_port


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AGENTHOST_"):
            monkeypatch.delenv(name)


def write(folder: Path, config: object) -> Path:
    path = folder / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def test_file_values_env_overrides_and_secret_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        {
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/a.db",
            "limits": {"max_body_bytes": 4096, "per_key": {"requests_per_minute": 5}},
            "providers": {
                "up": {"type": "openai", "base_url": "http://a/v1", "api_key": "${UP_KEY}"},
                "other": {"type": "openai", "base_url": "${OTHER_URL:-http://fallback/v1}"},
            },
        },
    )
    monkeypatch.setenv("UP_KEY", "sk-from-env")
    monkeypatch.setenv("AGENTHOST_LIMITS__MAX_BODY_BYTES", "8192")
    monkeypatch.setenv("AGENTHOST_PROVIDERS__UP__BASE_URL", "http://b/v1")
    monkeypatch.setenv("AGENTHOST_INTERFACE__REMOTE_AGENTS__USE", "false")
    settings = load_settings(path)
    assert settings.limits.max_body_bytes == 8192  # the environment beats the file
    assert settings.providers["up"].base_url == "http://b/v1"
    assert settings.providers["up"].type == "openai"  # the rest of the section survives
    assert settings.providers["up"].api_key is not None
    assert settings.providers["up"].api_key.get_secret_value() == "sk-from-env"
    assert settings.providers["other"].base_url == "http://fallback/v1"
    assert settings.interface.remote_agents.use is False
    # A partial per-key section keeps the other defaults instead of dropping them.
    assert settings.limits.per_key.requests_per_minute == 5
    assert settings.limits.per_key.concurrent_requests == 8


def test_config_file_found_through_agenthost_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTHOST_CONFIG", str(write(tmp_path, {"log_level": "debug"})))
    assert load_settings().log_level == "DEBUG"


def test_no_file_gives_the_embedded_defaults() -> None:
    settings = load_settings()
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert [p.type for p in settings.providers.values()] == ["local"]
    assert settings.limits.max_body_bytes == 3_145_728


BAD_CONFIGS = [
    ({"limits": {"max_body_bytes": -1}}, "limits.max_body_bytes"),
    ({"limits": {"max_body_byts": 10_000}}, "limits.max_body_byts"),
    ({"balance": {"auto_refill": {"interval": "soon"}}}, "balance.auto_refill.interval"),
    ({"providers": {"x": {"type": "nonsense"}}}, "providers.x.type"),
    ({"redis_url": "${NOT_SET_ANYWHERE}"}, "NOT_SET"),
    ({"mcp_servers": {"files": {"transport": "stdio"}}}, "mcp_servers.files"),
    ({"database_url": "mysql://db/x"}, "database_url"),
    ({"redis_url": "http://cache"}, "redis_url"),
    ({"log_level": "loud"}, "log_level"),
    ({"secret_key": "changeme"}, "secret_key"),
    ({"auth": {"oidc": {"issuer": "http://idp.example.com"}}}, "auth.oidc.issuer"),
    ({"auth": {"oidc": {"issuer": "idp.example.com"}}}, "auth.oidc.issuer"),
    (
        {"auth": {"oidc": {"issuer": "https://idp.example.com", "api": {"enabled": True}}}},
        "auth.oidc.api.audience",
    ),
    ({"auth": {"oidc": {"issuer": "https://i.example", "admin_claim": {}}}}, "admin_claim"),
    ("limits:\n  max_body_bytes: [1\n", "line 3"),
    ("- a\n- b\n", "mapping"),
]


@pytest.mark.parametrize(("config", "named"), BAD_CONFIGS)
def test_bad_config_is_refused_naming_the_key(tmp_path: Path, config: object, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, config))
    message = caught.value.message
    assert named in message and "\n" not in message
    assert message.startswith("config error:")


def test_oidc_allows_http_only_on_loopback(tmp_path: Path) -> None:
    api = {"enabled": True, "audience": "agenthost-api"}
    for issuer in (
        "http://127.0.0.1:8080/realms/acme",
        "http://localhost:8080",
        "https://idp.example.com/x",
    ):
        oidc = {"issuer": issuer, "api": api}
        settings = load_settings(write(tmp_path, {"auth": {"oidc": oidc}}))
        assert settings.auth.oidc is not None and settings.auth.oidc.issuer == issuer


def test_bad_env_override_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTHOST_LIMITS__MAX_BODY_BYTES", "lots")
    with pytest.raises(ConfigError, match="limits.max_body_bytes"):
        load_settings()
    monkeypatch.delenv("AGENTHOST_LIMITS__MAX_BODY_BYTES")
    monkeypatch.setenv("AGENTHOST_PROVIDERS", "{not json")
    with pytest.raises(ConfigError, match="providers"):
        load_settings()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"limits": {"max_body_bytes": "huge"}}, "limits.max_body_bytes"),
        ({"providers": {"up": {"type": "openai", "base_url": "ftp://x"}}}, "providers.up.base_url"),
    ],
)
def test_serve_with_bad_config_exits_with_one_line_and_never_listens(
    tmp_path: Path, extra: dict[str, object], named: str
) -> None:
    port = free_port()
    config = {"database_url": f"sqlite+aiosqlite:///{tmp_path}/a.db", **extra}
    path = write(tmp_path, config)
    result = subprocess.run(
        [sys.executable, "-m", "agenthost", "serve", "--config", str(path), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("AGENTHOST_")},
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: config error:") and named in lines[0]
    assert not _listening(port)


@pytest.mark.parametrize(
    ("config", "hint"),
    [
        ({"limits": {"max_body_byte": 10}}, "limits.max_body_byte: Extra inputs are not permitted "
         "(did you mean 'max_body_bytes'?)"),
        ({"databse_url": "sqlite+aiosqlite:///x.db"}, "(did you mean 'database_url'?)"),
        ({"providers": {"up": {"type": "openai", "base_ur": "http://x"}}},
         "providers.up.base_ur: Extra inputs are not permitted (did you mean 'base_url'?)"),
        ({"limits": {"per_key": {"request_per_minute": 5}}}, "'requests_per_minute'"),
    ],
)  # fmt: skip
def test_a_typo_gets_a_did_you_mean(tmp_path: Path, config: object, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, config))
    assert hint in str(caught.value)


def test_an_unknown_key_far_from_any_gets_no_guess(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, {"limits": {"zzz": 1}}))
    assert "did you mean" not in str(caught.value)


def test_an_error_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTHOST_LIMITS__MAX_BODY_BYTES", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "from the environment variable AGENTHOST_LIMITS__MAX_BODY_BYTES" in str(caught.value)
