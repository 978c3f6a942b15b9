"""The two benchmark modes: one worker on SQLite (with the growth variant), and scale-out
to two workers on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.oidc import Signer, auth_section, issuer_of
from bench.procs import BENCH_EMAIL, Gateway, LoadGenerator, Monitor, Pinning, write_config
from bench.reports import time_reports
from bench.scenarios import CHAT, DIRECT, INSTANT, PACED, Endpoint, Interface, Timing, measure
from bench.seed import seed

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Plan:
    scenarios: list[str]
    concurrency: list[int]
    overhead_seconds: float
    streaming_seconds: float
    open_streams: int
    seed_responses: int
    seed_transactions: int
    growth_streaming_concurrency: int
    metrics: bool = True  # Prometheus metrics, on by default in agenthost
    tracing: bool = False  # every request's trace exported to the fake upstream's OTLP sink
    oidc: bool = False  # the main scenarios call with an OIDC token instead of the API key

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _observability(plan: Plan, upstream_url: str) -> dict[str, Any]:
    """agenthost's `observability` section for this plan; traces go to the fake upstream,
    which accepts OTLP/HTTP posts and drops them."""
    section: dict[str, Any] = {"metrics": {"enabled": plan.metrics}}
    if plan.tracing:
        section["otlp_endpoint"] = upstream_url.removesuffix("/v1")
    return section


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gateway_endpoint(gateway: Gateway) -> Endpoint:
    assert gateway.proc is not None
    headers = {"authorization": f"Bearer {gateway.key}"}
    monitor = Monitor(gateway.proc.pid)
    return Endpoint("agenthost", "127.0.0.1", gateway.port, headers, gateway.agent, monitor)


def _interfaces(gateway: Gateway) -> tuple[list[Interface], str]:
    if scenarios.responses_available(gateway):
        return [CHAT, scenarios.RESPONSES], "available"
    return [CHAT], "unavailable (POST /api/agents/v1/responses did not answer 200)"


def _cell(
    load: LoadGenerator, endpoint: Endpoint, interface: Interface, timing: Timing,
    stream: bool, concurrency: int, duration: float, scenario: str,
) -> Row:  # fmt: skip
    row = measure(load, endpoint, interface, timing, stream, concurrency, duration)
    row["scenario"] = scenario
    print(
        f"  {scenario:9} {endpoint.label:9} {interface.name:9} stream={stream!s:5} "
        f"c={concurrency:<4} {row['rps']:>9,.1f} req/s {row['tok_s']:>10,.0f} tok/s "
        f"errors={row['errors']}",
        flush=True,
    )
    time.sleep(0.3)  # let closed connections and last settles clear before the next cell
    return row


def _matrix(
    load: LoadGenerator, gateway: Endpoint, direct: Endpoint, interfaces: list[Interface],
    scenario: str, timing: Timing, cells: list[tuple[bool, int]], duration: float,
) -> list[Row]:  # fmt: skip
    """Each cell straight at the upstream, then through agenthost on every interface."""
    rows = []
    for stream, concurrency in cells:
        rows.append(_cell(load, direct, DIRECT, timing, stream, concurrency, duration, scenario))
        for interface in interfaces:
            rows.append(
                _cell(load, gateway, interface, timing, stream, concurrency, duration, scenario)
            )
    return rows


def _start_gateway(
    folder: Path, upstream_url: str, pin: str | None, workers: int = 1,
    database_url: str | None = None, redis_url: str | None = None, seeding: Plan | None = None,
    observability: dict[str, Any] | None = None, signer: Signer | None = None,
) -> tuple[Gateway, dict[str, Any] | None]:  # fmt: skip
    auth = auth_section(upstream_url) if signer is not None else None
    write_config(folder, upstream_url, database_url, redis_url, observability, auth)
    gateway = Gateway(folder, _free_port())
    gateway.set_up()
    if signer is not None:  # call with the user's token instead of the key
        gateway.set_up_key = gateway.key
        gateway.key = signer.token(issuer_of(upstream_url), BENCH_EMAIL)
    seeded = None
    if seeding is not None:
        print(
            f"seeding {seeding.seed_responses:,} responses and "
            f"{seeding.seed_transactions:,} transactions…",
            flush=True,
        )
        path = folder / "agenthost.db"
        seeded = seed(path, gateway.agent, seeding.seed_responses, seeding.seed_transactions)
        print(f"  seeded in {seeded['seconds']} s", flush=True)
    gateway.start(workers, pin)
    return gateway, seeded


def run_single(
    plan: Plan, scratch: Path, upstream_url: str, upstream_port: int, direct_monitor: Monitor,
    load: LoadGenerator, pin: Pinning, signer: Signer | None = None,
) -> dict[str, Any]:  # fmt: skip
    direct = Endpoint("direct", "127.0.0.1", upstream_port, {}, "bench-model", direct_monitor)
    rows: list[Row] = []
    streams: list[Row] = []
    out: dict[str, Any] = {"rows": rows, "streams": streams}
    both = [(s, c) for c in plan.concurrency for s in (False, True)]
    main = {"overhead", "streaming", "streams1000"} & set(plan.scenarios)
    if main:
        gateway, _ = _start_gateway(
            scratch / "main",
            upstream_url,
            pin.server,
            observability=_observability(plan, upstream_url),
            signer=signer if plan.oidc else None,
        )
        try:
            endpoint = _gateway_endpoint(gateway)
            interfaces, out["responses_interface"] = _interfaces(gateway)
            print(f"responses interface: {out['responses_interface']}", flush=True)
            scenarios.warm_up(load, endpoint, interfaces)
            if "overhead" in plan.scenarios:
                rows += _matrix(load, endpoint, direct, interfaces, "overhead", INSTANT, both,
                                plan.overhead_seconds)  # fmt: skip
            if "streaming" in plan.scenarios:
                rows += _matrix(load, endpoint, direct, interfaces, "streaming", PACED, both,
                                plan.streaming_seconds)  # fmt: skip
            if "streams1000" in plan.scenarios:
                for target in (endpoint, direct):
                    held = scenarios.open_streams(load, target, plan.open_streams)
                    print(f"  open streams {target.label}: {held}", flush=True)
                    streams.append(held)
                    time.sleep(2.0)  # the gateway cancels its upstream streams
        finally:
            gateway.stop()
    if "credentials" in plan.scenarios and signer is not None:
        out["credentials"] = _credentials(plan, scratch / "credentials", upstream_url, load, pin,
                                          signer)  # fmt: skip
    if "growth" in plan.scenarios:
        try:
            rows += _growth(plan, scratch / "growth", upstream_url, direct, load, pin, out)
        except RuntimeError as exc:  # keep what was measured; say why growth is missing
            print(f"growth scenario failed: {exc}", flush=True)
            out["growth_error"] = str(exc)
    return out


def _credentials(
    plan: Plan, folder: Path, upstream_url: str, load: LoadGenerator, pin: Pinning,
    signer: Signer,
) -> list[Row]:  # fmt: skip
    """An API key against an OIDC token on one server, in alternating cells at c=1, so
    the difference is the token path alone (the checked token and the keys are cached)."""
    gateway, _ = _start_gateway(folder, upstream_url, pin.server, signer=signer)
    rows: list[Row] = []
    try:
        made = _gateway_endpoint(gateway)
        token_endpoint = Endpoint(
            "oidc token", made.host, made.port, made.headers, made.model, made.monitor
        )
        key_headers = {"authorization": f"Bearer {gateway.set_up_key}"}
        key_endpoint = Endpoint(
            "api key", made.host, made.port, key_headers, made.model, made.monitor
        )
        scenarios.warm_up(load, key_endpoint, [CHAT])
        scenarios.warm_up(load, token_endpoint, [CHAT])
        for _ in range(3):
            for endpoint in (key_endpoint, token_endpoint):
                rows.append(_cell(load, endpoint, CHAT, INSTANT, False, 1,
                                  plan.overhead_seconds, "credentials"))  # fmt: skip
    finally:
        gateway.stop()
    return rows


def _growth(
    plan: Plan, folder: Path, upstream_url: str, direct: Endpoint, load: LoadGenerator,
    pin: Pinning, out: dict[str, Any],
) -> list[Row]:  # fmt: skip
    """The overhead and streaming target cells again, on a database that is already large."""
    gateway, out["seed"] = _start_gateway(
        folder, upstream_url, pin.server, seeding=plan,
        observability=_observability(plan, upstream_url),
    )  # fmt: skip
    out["report_ms"] = time_reports(folder / "agenthost.db")
    print(f"  spend reports (ms per grouping): {out['report_ms']}", flush=True)
    try:
        endpoint = _gateway_endpoint(gateway)
        interfaces, _ = _interfaces(gateway)
        scenarios.warm_up(load, endpoint, interfaces)
        instant = [(False, 1), (False, 16)]
        paced = [(True, plan.growth_streaming_concurrency)]
        rows = _matrix(load, endpoint, direct, interfaces, "growth", INSTANT, instant,
                       plan.overhead_seconds)  # fmt: skip
        rows += _matrix(load, endpoint, direct, interfaces, "growth", PACED, paced,
                        plan.streaming_seconds)  # fmt: skip
        return rows
    finally:
        gateway.stop()


# --- scale-out ------------------------------------------------------------------------


async def _postgres(admin_url: str, name: str, create: bool) -> None:
    import asyncpg  # type: ignore[import-untyped]

    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def run_scaleout(
    plan: Plan, scratch: Path, upstream_url: str, load: LoadGenerator, postgres: str,
    redis_url: str,
) -> dict[str, Any]:  # fmt: skip
    """The same cells with 1 and then 2 workers on one PostgreSQL database and Redis."""
    name = f"agenthost_bench_{secrets.token_hex(4)}"
    asyncio.run(_postgres(postgres, name, create=True))
    database_url = postgres.rsplit("/", 1)[0] + f"/{name}"
    rows: list[Row] = []
    cells = [(False, c) for c in plan.concurrency if c >= 16] + [(True, 64)]
    folder = scratch / "scaleout"
    try:
        write_config(folder, upstream_url, database_url, redis_url)
        gateway = Gateway(folder, _free_port())
        gateway.set_up()
        for workers in (1, 2):
            gateway.start(workers, None)
            try:
                rows += _scaleout_cells(plan, load, _gateway_endpoint(gateway), workers, cells)
            finally:
                gateway.stop()
    finally:
        asyncio.run(_postgres(postgres, name, create=False))
    return {"rows": rows, "scaleout": _gains(rows), "database": "postgresql + redis"}


def _scaleout_cells(
    plan: Plan, load: LoadGenerator, endpoint: Endpoint, workers: int, cells: list[tuple[bool, int]]
) -> list[Row]:
    scenarios.warm_up(load, endpoint, [CHAT])
    label = f"scaleout-{workers}w"
    rows = [
        _cell(load, endpoint, CHAT, INSTANT, stream, concurrency, plan.overhead_seconds, label)
        for stream, concurrency in cells
    ]
    rows.append(_cell(load, endpoint, CHAT, PACED, True, 256, plan.streaming_seconds, label))
    return rows


def _gains(rows: list[Row]) -> list[Row]:
    one = {(r["stream"], r["concurrency"]): r for r in rows if r["scenario"] == "scaleout-1w"}
    gains = []
    for row in rows:
        if row["scenario"] != "scaleout-2w":
            continue
        base = one.get((row["stream"], row["concurrency"]))
        if base is None:
            continue
        gains.append(
            {
                "stream": row["stream"],
                "concurrency": row["concurrency"],
                "rps_1w": base["rps"],
                "rps_2w": row["rps"],
                "tok_s_1w": base["tok_s"],
                "tok_s_2w": row["tok_s"],
                "gain": round(row["rps"] / base["rps"], 2) if base["rps"] else None,
            }
        )
    return gains
