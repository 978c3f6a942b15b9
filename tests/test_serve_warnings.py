"""`agenthost serve --workers N` warns about what holds per worker only."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenthost.cli.serve import worker_warnings
from agenthost.settings import Settings
from tests.support.server import running_server


def _settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


def test_one_worker_gets_no_warning() -> None:
    assert worker_warnings(_settings(), 1) == []


def test_sqlite_without_redis_and_an_embedded_model_each_warn() -> None:
    found = worker_warnings(_settings(providers={"local": {"type": "local"}}), 3)
    assert len(found) == 3
    assert "SQLite" in found[0] and "PostgreSQL" in found[0]
    assert "no redis_url" in found[1] and "per worker only" in found[1]
    assert "each of the 3 workers loads its own copy of the embedded model" in found[2]


def test_postgres_and_redis_without_local_model_are_quiet() -> None:
    settings = _settings(
        database_url="postgresql+asyncpg://u@127.0.0.1/test",
        redis_url="redis://127.0.0.1:6379/0",
        providers={"up": {"type": "scripted"}},
    )
    assert worker_warnings(settings, 4) == []


@pytest.mark.timeout(180)
def test_serve_prints_them_before_starting(tmp_path: Path) -> None:
    with running_server(tmp_path, start=False) as server:
        server.start(workers=2)
        log = server.log()
    assert "warning: 2 workers share one SQLite file" in log
    assert "warning: no redis_url" in log
