"""The `agenthost` command, run as a real subprocess: help everywhere, one line per error."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest.mock import patch

import pytest
import yaml

from agenthost.cli import base, main

COMMANDS = [
    [],
    ["serve"],
    ["users"],
    ["users", "add"],
    ["users", "list"],
    ["keys"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["agents"],
    ["agents", "create"],
    ["agents", "list"],
    ["balance"],
    ["balance", "show"],
    ["balance", "add"],
    ["secrets"],
    ["secrets", "set"],
    ["secrets", "list"],
    ["secrets", "delete"],
    ["groups"],
    ["groups", "create"],
    ["groups", "add"],
    ["groups", "remove"],
    ["groups", "list"],
    ["groups", "delete"],
    ["db"],
    ["db", "upgrade"],
]


def agenthost(
    config: Path | None, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in this process (the machine is shared: a process per call is slow).

    It goes through `main()`, exactly as the console script does, with fresh state."""
    out, err = io.StringIO(), io.StringIO()
    env = {"AGENTHOST_CONFIG": str(config)} if config is not None else {}
    base._state.clear()
    code = 0
    with (
        patch.dict(os.environ, env),
        patch.object(sys, "argv", ["agenthost", *args]),
        patch.object(sys, "stdin", io.StringIO(stdin or "")),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def agenthost_process(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTHOST_")}
    return subprocess.run(
        [sys.executable, "-m", "agenthost", *args],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=60,
    )


@pytest.fixture(autouse=True)
def _no_inherited_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AGENTHOST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "config.yaml"
    settings = {
        "database_url": f"sqlite+aiosqlite:///{folder}/agenthost.db",
        "data_dir": str(folder),
        "providers": {"scripted": {"type": "scripted"}},
        "balance": {"start_balance": 1000},
    }
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "agenthost")
def test_every_command_has_help(command: list[str]) -> None:
    result = agenthost(None, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "--help" in result.stdout


def test_real_processes_print_help_and_fail_with_one_line(tmp_path: Path) -> None:
    runs = [
        ["--help"],
        ["users", "add"],
        ["--config", str(tmp_path / "none.yaml"), "users", "list"],
    ]
    with ThreadPoolExecutor(3) as pool:
        helped, missing, unreadable = pool.map(lambda a: agenthost_process(*a), runs)
    assert helped.returncode == 0 and "serve" in helped.stdout and "keys" in helped.stdout
    _fails_with_one_line(missing, "email")
    assert missing.returncode == 2  # a usage error, as click reports them
    _fails_with_one_line(unreadable, "not found")


def test_serve_help_lists_the_documented_options() -> None:
    out = agenthost(None, "serve", "--help").stdout
    for option in ("--config", "--host", "--port", "--workers"):
        assert option in out


def _fails_with_one_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert result.stdout == ""


def test_lifecycle_of_users_keys_agents_and_balances(config: Path) -> None:
    assert agenthost(config, "db", "upgrade").stdout.strip() == "database is up to date"
    added = agenthost(config, "users", "add", "Owner@Example.com", "--role", "admin")
    assert added.returncode == 0 and "owner@example.com" in added.stdout.lower()
    assert agenthost(config, "users", "add", "friend@example.com").returncode == 0
    listed = agenthost(config, "users", "list").stdout
    assert "owner@example.com\tadmin" in listed and "friend@example.com\tuser" in listed

    created = agenthost(
        config, "keys", "create", "owner@example.com", "--name", "ci", "--expires-days", "3"
    )
    key = created.stdout.strip()
    assert re.fullmatch(r"sk-[0-9a-f]{64}", key), created.stdout
    assert key not in created.stderr
    key_id = re.search(r"key_\w+", created.stderr)
    assert key_id is not None
    keys = agenthost(config, "keys", "list", "owner@example.com").stdout
    assert key[:8] in keys and key not in keys and "active" in keys

    agent = agenthost(
        config,
        "agents",
        "create",
        "--owner",
        "owner@example.com",
        "--name",
        "Helper",
        "--provider",
        "scripted",
        "--model",
        "m",
        "--instructions",
        "Be brief.",
        "--share-remote",
        "user:friend@example.com",
        "--share-remote",
        "public",
    ).stdout.strip()
    assert re.fullmatch(r"agent_[A-Za-z0-9_-]{21}", agent), agent
    agents = agenthost(config, "agents", "list").stdout
    assert agent in agents and "public:*" in agents and "user:usr_" in agents

    assert agenthost(config, "balance", "add", "friend@example.com", "250").stdout.strip() == (
        "friend@example.com: 1250 credits"
    )
    shown = agenthost(config, "balance", "show", "friend@example.com").stdout
    assert "1250 credits" in shown and "grant\t+250" in shown

    assert agenthost(config, "keys", "revoke", key_id.group(0)).returncode == 0
    assert "revoked" in agenthost(config, "keys", "list", "owner@example.com").stdout
    database = Path(yaml.safe_load(config.read_text())["data_dir"]) / "agenthost.db"
    with sqlite3.connect(database) as conn:
        stored = conn.execute("SELECT key_hash, prefix FROM api_keys").fetchall()
    assert stored and all(key not in row for row in stored)  # only the hash and prefix


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["keys", "create", "nobody@example.com", "--name", "x"], ["nobody@example.com"]),
        (["keys", "revoke", "key_doesnotexist"], ["key_doesnotexist"]),
        (["keys", "list", "nobody@example.com"], ["nobody@example.com"]),
        (["users", "add", "someone@example.com", "--role", "root"], ["role"]),
        (["balance", "show", "nobody@example.com"], ["nobody@example.com"]),
        (["balance", "add", "nobody@example.com", "lots"], ["credits"]),
        (
            [
                "agents",
                "create",
                "--owner",
                "x@example.com",
                "--name",
                "n",
                "--provider",
                "nope",
                "--model",
                "m",
            ],
            ["nope"],
        ),
        (["keys", "create", "someone@example.com"], ["--name"]),
        (["serve", "--port", "many"], ["--port"]),
        (["no-such-command"], ["no-such-command"]),
    ],
)
def test_errors_are_one_clear_line(config: Path, args: list[str], words: list[str]) -> None:
    _fails_with_one_line(agenthost(config, *args), *words)


def test_duplicate_user_and_short_password_are_refused(config: Path) -> None:
    agenthost(config, "users", "add", "twice@example.com")
    _fails_with_one_line(agenthost(config, "users", "add", "TWICE@example.com"), "already exists")
    short = agenthost(config, "users", "add", "pw@example.com", "--password-stdin", stdin="short\n")
    _fails_with_one_line(short, "8 characters")
