"""A provider whose `${VAR}` is unset is disabled (one warning line naming it) instead of
stopping the server; its agents answer 503 naming the variable, unless they have a
fallback, which then serves them; `serve --strict` and `strict_providers: true` refuse to
start instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from agenthost.errors import ConfigError
from agenthost.settings import load_settings
from tests.support.server import free_port, running_server

VARIABLE = "AGENTHOST_TEST_PAID_KEY"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AGENTHOST_"):
            monkeypatch.delenv(name)


def _config(tmp_path: Path, **extra: object) -> Path:
    config = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/a.db",
        "providers": {
            "scripted": {"type": "scripted"},
            "paid": {
                "type": "openai",
                "base_url": "https://api.example.com/v1",
                "api_key": "${" + VARIABLE + "}",
            },
        },
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_unset_variable_disables_only_its_provider(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path))
    assert list(settings.providers) == ["scripted"]
    assert settings.disabled_providers == {"paid": VARIABLE}


def test_strict_refuses_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=f"providers.paid.api_key references \\${{{VARIABLE}}}"):
        load_settings(_config(tmp_path, strict_providers=True))
    monkeypatch.setenv("AGENTHOST_STRICT_PROVIDERS", "true")
    with pytest.raises(ConfigError, match=VARIABLE):
        load_settings(_config(tmp_path))


def test_a_set_variable_keeps_the_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "sk-upstream")
    settings = load_settings(_config(tmp_path, strict_providers=True))
    assert settings.providers["paid"].api_key is not None
    assert settings.disabled_providers == {}


def test_agents_on_a_disabled_provider_answer_503_naming_the_variable(
    tmp_path: Path, upstream_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = {"type": "openai", "base_url": upstream_url, "api_key": "${" + VARIABLE + "}"}
    monkeypatch.setenv(VARIABLE, "sk-upstream")
    with running_server(tmp_path, upstream_url, {"providers": {"paid": paid}}) as server:
        server.add_user("pat@example.com")
        key = server.create_key("pat@example.com")
        agent = server.create_agent("pat@example.com", "paid", "gpt-4o-mini")
        backed = server.create_agent(
            "pat@example.com", "paid", "gpt-4o-mini", "--fallback", "scripted:backup-model"
        )
        server.stop()
        monkeypatch.delenv(VARIABLE)
        server.start()  # the rest of the server still starts

        def ask(model: str) -> httpx.Response:
            return httpx.post(
                f"{server.api}/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {key}"},
                timeout=30,
            )

        reply = ask(agent)
        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert error["code"] == "provider_disabled" and VARIABLE in error["message"]
        # An agent with a fallback is served by it while its own provider is disabled.
        reply = ask(backed)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-agenthost-served-by"] == "scripted:backup-model"
        assert reply.json()["choices"][0]["message"]["content"] == "echo: hi"
        usage = server.cli("usage", "report", "--by", "model").stdout
        assert "backup-model" in usage and "gpt-4o-mini" not in usage
        reply = ask(server.create_agent("pat@example.com"))
        assert reply.status_code == 200, reply.text
        warnings = [line for line in server.log().splitlines() if "is disabled" in line]
        assert len(warnings) == 1 and "'paid'" in warnings[0] and VARIABLE in warnings[0]
        refused = server.cli("agents", "create", "--owner", "pat@example.com", "--name", "x",
                             "--provider", "paid", "--model", "m", check=False)  # fmt: skip
        assert refused.returncode != 0 and VARIABLE in refused.stderr
        server.stop()
        port = free_port()
        strict = subprocess.run(
            [sys.executable, "-m", "agenthost", "serve", "--strict", "--port", str(port)],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert strict.returncode != 0
        assert f"references ${{{VARIABLE}}}, which is not set" in strict.stderr
