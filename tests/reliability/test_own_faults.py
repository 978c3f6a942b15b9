"""Our own faults: a worker killed mid-run, a graceful stop, a locked or unreachable
database, Redis down. Each test starts its own server so it may break it."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import Tenant
from tests.reliability.conftest import quick_tenant
from tests.reliability.modes import call
from tests.reliability.support import assert_error_shape, auth, ledger, ledger_db, marker
from tests.support.server import Server, free_port, running_server

START_BALANCE = 50_000_000


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _open_streams(
    server: Server, tenant: Tenant, count: int, stall_ms: int
) -> tuple[list[threading.Thread], list[list[str]]]:
    """`count` chat streams that each stall after their first token; returns once every
    stream has received that token, with the lines each stream records."""
    started = threading.Barrier(count + 1, timeout=30)
    results: list[list[str]] = []

    def one() -> None:
        lines: list[str] = []
        results.append(lines)
        body = {
            "model": tenant.fake_agent,
            "stream": True,
            "messages": [{"role": "user", "content": f"{marker()}\n!stall {stall_ms}"}],
        }
        first = True
        try:
            with httpx.stream(
                "POST",
                f"{server.api}/chat/completions",
                json=body,
                headers=auth(tenant.key),
                timeout=60,
            ) as r:
                for line in r.iter_lines():
                    lines.append(line)
                    if first and '"content":"Hello' in line:
                        first = False
                        started.wait()
        except httpx.HTTPError as exc:
            lines.append(f"!{type(exc).__name__}")
        finally:
            if first:
                started.abort()

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    started.wait()
    return threads, results


@pytest.fixture
def fresh(tmp_path: Path, upstream_url: str) -> Iterator[Server]:
    with running_server(tmp_path / "srv", upstream_url) as srv:
        yield srv


def test_sigkill_mid_run_leaves_no_half_written_ledger(fresh: Server) -> None:
    tenant = quick_tenant(fresh, "kill@example.com")
    for _ in range(3):  # some settled runs first
        assert call(fresh.api, tenant.key, "chat-json", tenant.fake_agent, "hi").status == 200
    threads, _ = _open_streams(fresh, tenant, 4, stall_ms=20_000)
    assert fresh.proc is not None
    fresh.proc.send_signal(signal.SIGKILL)
    fresh.proc.wait(10)
    for thread in threads:
        thread.join(10)
    with ledger_db(fresh) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    after = ledger(fresh, tenant.email)
    assert len(after.usage_rows) == 3, "killed runs wrote nothing; settled ones stay"
    assert after.balance - START_BALANCE == after.credits_sum
    fresh.proc = None
    fresh.start()  # the same database serves again
    assert call(fresh.api, tenant.key, "chat-json", tenant.fake_agent, "hi").status == 200
    again = ledger(fresh, tenant.email)
    assert len(again.usage_rows) == 4 and again.balance - START_BALANCE == again.credits_sum


def test_sigterm_drains_open_streams_then_exits(fresh: Server) -> None:
    tenant = quick_tenant(fresh, "term@example.com")
    threads, results = _open_streams(fresh, tenant, 3, stall_ms=2_000)
    assert fresh.proc is not None
    stopped_at = time.monotonic()
    fresh.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert not _reachable(fresh.port), "no new connections while draining"
    for thread in threads:
        thread.join(30)
    code = fresh.proc.wait(30)
    took = time.monotonic() - stopped_at
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean stop.
    assert code in (0, -signal.SIGTERM) and took < 10, (code, took)
    for lines in results:
        assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]", lines[-3:]
        assert any('"finish_reason":"stop"' in line for line in lines)
    fresh.proc = None
    assert len(ledger(fresh, tenant.email).usage_rows) == 3, "every drained run was charged"


def test_sigterm_ends_streams_longer_than_the_drain_with_their_protocols_ending(
    tmp_path: Path, upstream_url: str
) -> None:
    overrides = {"limits": {"graceful_shutdown_seconds": 4}}
    with running_server(tmp_path / "short", upstream_url, overrides) as srv:
        tenant = quick_tenant(srv, "longterm@example.com")
        threads, results = _open_streams(srv, tenant, 2, stall_ms=60_000)
        events: list[str] = []

        def responses_stream() -> None:
            body = {"model": tenant.fake_agent, "stream": True, "input": "!stall 60000"}
            with httpx.stream(
                "POST", f"{srv.api}/responses", json=body, headers=auth(tenant.key), timeout=60
            ) as reply:
                events.extend(reply.iter_lines())

        responses = threading.Thread(target=responses_stream)
        responses.start()
        time.sleep(1.0)
        assert srv.proc is not None
        stopped_at = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for thread in [*threads, responses]:
            thread.join(30)
        code = srv.proc.wait(30)
        took = time.monotonic() - stopped_at
        assert code in (0, -signal.SIGTERM) and took < 15, (code, took)
        for lines in results:
            data = [line for line in lines if line.startswith("data: ")]
            assert data[-1] == "data: [DONE]", lines[-4:]
            assert "server_shutting_down" in data[-2], data[-2]
        named = [line for line in events if line.startswith("event: ")]
        assert named[-2:] == ["event: error", "event: response.failed"], events[-8:]
        assert any("server_shutting_down" in line for line in events)
        srv.proc = None
        assert len(ledger(srv, tenant.email).usage_rows) == 3, "every ended run was charged"


def test_a_response_left_running_by_a_killed_worker_ends_failed_after_its_lease(
    tmp_path: Path, upstream_url: str
) -> None:
    overrides = {"limits": {"run_lease_seconds": 3}}
    with running_server(tmp_path / "leased", upstream_url, overrides) as srv:
        tenant = quick_tenant(srv, "lease@example.com")
        # A live worker renews its runs: one longer than the lease still completes.
        body = {"model": tenant.fake_agent, "stream": True, "input": "!stall 7000"}
        with httpx.stream(
            "POST", f"{srv.api}/responses", json=body, headers=auth(tenant.key), timeout=60
        ) as reply:
            lines = list(reply.iter_lines())
        assert "event: response.completed" in lines, lines[-6:]
        ids: list[str] = []

        def stream() -> None:
            body = {"model": tenant.fake_agent, "stream": True, "input": "!stall 60000"}
            try:
                with httpx.stream(
                    "POST", f"{srv.api}/responses", json=body, headers=auth(tenant.key),
                    timeout=60,
                ) as reply:  # fmt: skip
                    for line in reply.iter_lines():
                        if line.startswith("data: ") and '"response.created"' in line:
                            ids.append(json.loads(line[6:])["response"]["id"])
            except httpx.HTTPError:
                pass  # the server is killed under it

        reader = threading.Thread(target=stream)
        reader.start()
        background = httpx.post(
            f"{srv.api}/responses",
            json={"model": tenant.fake_agent, "input": "!stall 60000", "background": True},
            headers=auth(tenant.key),
            timeout=30,
        ).json()["id"]
        deadline = time.monotonic() + 20
        while not ids and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ids, "the stream never started"
        time.sleep(0.5)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
        reader.join(10)
        srv.proc = None
        srv.start()  # the same database; any worker sweeps
        for response_id in (ids[0], background):
            deadline, found = time.monotonic() + 20, {}
            while time.monotonic() < deadline:
                found = httpx.get(
                    f"{srv.api}/responses/{response_id}", headers=auth(tenant.key)
                ).json()
                if found["status"] != "in_progress" and found["status"] != "queued":
                    break
                time.sleep(0.5)
            assert found["status"] == "failed", found
            assert found["error"]["code"] == "worker_lost"


def test_locked_sqlite_delays_requests_but_loses_nothing(fresh: Server) -> None:
    tenant = quick_tenant(fresh, "lock@example.com")
    call(fresh.api, tenant.key, "chat-json", tenant.fake_agent, "warm up")
    before = ledger(fresh, tenant.email)
    conn = sqlite3.connect(
        Path(fresh.folder) / "agenthost.db",
        timeout=10,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute("BEGIN IMMEDIATE")  # the one writer slot is ours for two seconds
    conn.execute("UPDATE users SET role = role")
    timer = threading.Timer(2.0, lambda: conn.execute("COMMIT"))
    timer.start()
    out = call(fresh.api, tenant.key, "chat-json", tenant.fake_agent, "while locked")
    timer.join()
    conn.close()
    assert out.status == 200, out
    time.sleep(0.3)
    after = ledger(fresh, tenant.email)
    assert len(after.since(before)) == 1
    assert after.balance - before.balance == after.credits_sum - before.credits_sum


def test_redis_down_degrades_to_in_process_limits_with_a_warning(
    tmp_path: Path, upstream_url: str
) -> None:
    overrides = {
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
        "limits": {"per_key": {"requests_per_minute": 3}},
    }
    with running_server(tmp_path / "redis", upstream_url, overrides) as srv:
        tenant = quick_tenant(srv, "redis@example.com")
        statuses = [
            httpx.get(f"{srv.api}/models", headers=auth(tenant.key)).status_code for _ in range(2)
        ]
        chats = [call(srv.api, tenant.key, "chat-json", tenant.fake_agent, "hi") for _ in range(4)]
        assert [c.status for c in chats] == [200, 200, 200, 429], "limits still hold"
        assert chats[-1].http_error is not None
        assert chats[-1].http_error["code"] == "rate_limit_exceeded"
        assert statuses == [200, 200]
        assert "Redis is unreachable" in srv.log()


PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/{}"


def _psql(sql: str) -> None:
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture(scope="module")
def pg_server(
    tmp_path_factory: pytest.TempPathFactory, upstream_url: str
) -> Iterator[tuple[Server, str]]:
    if not _reachable(5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"agenthost_reliability_{marker()}"
    _psql(f"CREATE DATABASE {name}")
    folder = tmp_path_factory.mktemp("pg")
    try:
        with running_server(folder, upstream_url, database_url=PG.format(name)) as srv:
            yield srv, name
    finally:
        _psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def database_down(name: str) -> Iterator[None]:
    """No connection to `name` is possible (existing ones are cut) until the block ends."""
    _psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    _psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        yield
    finally:
        _psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")


@pytest.mark.postgres
def test_database_unreachable_is_503_in_the_error_shape_then_recovers(
    pg_server: tuple[Server, str],
) -> None:
    srv, name = pg_server
    tenant = quick_tenant(srv, "pgdown@example.com")
    assert call(srv.api, tenant.key, "chat-json", tenant.fake_agent, "hi").status == 200
    # A key never used before is in no cache: checking it needs the database. (A warm
    # key may still be served from the caches; its charge then waits for the database,
    # see the next test.)
    cold_key = srv.create_key(tenant.email)
    with database_down(name):
        started = time.monotonic()
        replies = [
            call(srv.api, cold_key, mode, tenant.fake_agent, "hi", timeout=30)
            for mode in ("chat-json", "responses-json")
        ]
        models = httpx.get(f"{srv.api}/usage", headers=auth(tenant.key), timeout=30)
        took = time.monotonic() - started
    for out in replies:
        assert out.status == 503, out
        assert out.http_error is not None and out.http_error["code"] == "database_unavailable"
    assert_error_shape(models, 503, "database_unavailable")
    assert models.headers["retry-after"] == "1"
    assert took < 30
    assert call(srv.api, tenant.key, "chat-json", tenant.fake_agent, "hi").status == 200


@pytest.mark.postgres
def test_runs_finished_during_a_database_outage_are_still_charged(
    pg_server: tuple[Server, str],
) -> None:
    srv, name = pg_server
    tenant = quick_tenant(srv, "pgledger@example.com")
    assert call(srv.api, tenant.key, "chat-json", tenant.fake_agent, "warm").status == 200
    with database_down(name):
        outs = [call(srv.api, tenant.key, "chat-sse", tenant.fake_agent, "hi") for _ in range(2)]
    assert all(o.text == "Hello from fake upstream" for o in outs), "the answers were generated"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        rows = _pg_usage_rows(name, tenant.email)
        if rows >= 3:
            break
        time.sleep(0.5)
    assert rows == 3, f"{rows} usage transactions: the two runs of the outage were lost"


def _pg_usage_rows(name: str, email: str) -> int:
    sql = (
        "SELECT count(*) FROM transactions t JOIN users u ON u.id = t.user_id "
        f"WHERE u.email = '{email}' AND t.kind = 'usage'"
    )
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return int(out.stdout.strip())
