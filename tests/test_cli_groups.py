"""`agenthost groups …` and `--share-remote group:NAME`: each command's output, and one
clear line (exit 1) for every error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.test_cli import _fails_with_one_line, agenthost


@pytest.fixture(autouse=True)
def _no_inherited_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTHOST_CONFIG", raising=False)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-groups")
    path = folder / "config.yaml"
    settings = {
        "database_url": f"sqlite+aiosqlite:///{folder}/agenthost.db",
        "data_dir": str(folder),
        "providers": {"scripted": {"type": "scripted"}},
    }
    path.write_text(yaml.safe_dump(settings))
    for email in ("ann@example.com", "ben@example.com", "cy@example.com"):
        assert agenthost(path, "users", "add", email).returncode == 0
    assert agenthost(path, "groups", "create", "standing").returncode == 0
    return path


def ok(config: Path, *args: str) -> str:
    result = agenthost(config, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def groups_listed(config: Path) -> dict[str, list[str]]:
    lines = [line.split("\t") for line in ok(config, "groups", "list").splitlines()]
    return {name: [source, count, members] for name, source, count, members in lines}


def test_a_group_is_created_filled_emptied_and_deleted(config: Path) -> None:
    assert ok(config, "groups", "create", "Data team") == "created group Data team"
    assert groups_listed(config)["Data team"] == ["local", "0", "-"]
    assert ok(config, "groups", "add", "Data team", "Ben@Example.com") == (
        "added ben@example.com to group Data team"
    )
    ok(config, "groups", "add", "Data team", "ann@example.com")
    again = ok(config, "groups", "add", "Data team", "ann@example.com")
    assert again == "ann@example.com is already in group Data team"
    listed = groups_listed(config)["Data team"]
    assert listed == ["local", "2", "ann@example.com,ben@example.com"]

    assert ok(config, "groups", "remove", "Data team", "ben@example.com") == (
        "removed ben@example.com from group Data team"
    )
    assert groups_listed(config)["Data team"] == ["local", "1", "ann@example.com"]
    deleted = ok(config, "groups", "delete", "Data team")
    assert deleted == "deleted group Data team (1 member(s); unshared from 0 agent(s))"
    assert "Data team" not in groups_listed(config)


def test_sharing_with_a_group_shows_its_name_and_ends_with_the_group(config: Path) -> None:
    ok(config, "groups", "create", "reviewers")
    agent = ok(
        config,
        *("agents", "create", "--owner", "cy@example.com", "--name", "Reviewer"),
        *("--provider", "scripted", "--model", "m", "--share-remote", "group:reviewers"),
    )
    other = ok(
        config,
        *("agents", "create", "--owner", "cy@example.com", "--name", "Second"),
        *("--provider", "scripted", "--model", "m"),
    )
    assert ok(config, "agents", "update", other, "--share-remote", "group:reviewers") == other
    rows = {r.split("\t")[0]: r.split("\t")[3] for r in ok(config, "agents", "list").splitlines()}
    assert rows[agent] == rows[other] == "group:reviewers"

    deleted = ok(config, "groups", "delete", "reviewers")
    assert "unshared from 2 agent(s)" in deleted
    rows = {r.split("\t")[0]: r.split("\t")[3] for r in ok(config, "agents", "list").splitlines()}
    assert rows[agent] == rows[other] == "private"


def test_audit_log_records_every_group_change(config: Path) -> None:
    ok(config, "groups", "create", "audited")
    ok(config, "groups", "add", "audited", "ann@example.com")
    ok(config, "groups", "remove", "audited", "ann@example.com")
    ok(config, "groups", "delete", "audited")
    shown = ok(config, "audit", "list", "--target", "audited", "--action", "group.").splitlines()
    actions = [line.split()[2] for line in shown]
    assert actions == [
        "group.deleted",
        "group.member_removed",
        "group.member_added",
        "group.created",
    ]
    assert all(line.split()[1].startswith("cli:") for line in shown)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["groups", "create", "a:b"], ["a:b", "only letters"]),
        (["groups", "create", ""], ["1 to 100"]),
        (["groups", "create", "x" * 101], ["1 to 100"]),
        (["groups", "create", " padded"], ["start or end with a space"]),
        (["groups", "create", "line\nbreak"], ["only letters"]),
        (["groups", "add", "no such group", "ann@example.com"], ["no group 'no such group'"]),
        (["groups", "add", "standing", "nobody@example.com"], ["nobody@example.com"]),
        (["groups", "remove", "no such group", "ann@example.com"], ["no group"]),
        (["groups", "remove", "standing", "nobody@example.com"], ["nobody@example.com"]),
        (["groups", "remove", "standing", "cy@example.com"], ["not in group standing"]),
        (["groups", "delete", "no such group"], ["no group 'no such group'"]),
        (["groups", "create"], ["Missing argument 'name'"]),
        (["groups", "add", "standing"], ["Missing argument 'email'"]),
        (
            [
                *("agents", "create", "--owner", "ann@example.com", "--name", "n"),
                *("--provider", "scripted", "--model", "m", "--share-remote", "group:ghosts"),
            ],
            ["no group 'ghosts'"],
        ),
        (
            [
                *("agents", "create", "--owner", "ann@example.com", "--name", "n"),
                *("--provider", "scripted", "--model", "m", "--share-remote", "group:"),
            ],
            ["group:NAME"],
        ),
    ],
)
def test_errors_are_one_clear_line(config: Path, args: list[str], words: list[str]) -> None:
    _fails_with_one_line(agenthost(config, *args), *words)


def test_a_duplicate_group_is_refused(config: Path) -> None:
    ok(config, "groups", "create", "twice")
    _fails_with_one_line(agenthost(config, "groups", "create", "twice"), "'twice' already exists")
    assert groups_listed(config)["twice"] == ["local", "0", "-"]


def test_a_failed_share_creates_no_agent(config: Path) -> None:
    before = ok(config, "agents", "list")
    result = agenthost(
        config,
        *("agents", "create", "--owner", "ann@example.com", "--name", "orphan"),
        *("--provider", "scripted", "--model", "m", "--share-remote", "group:missing"),
    )
    assert result.returncode == 1
    assert ok(config, "agents", "list") == before
