"""`python -m bench.subagents`: what a sub-agent call adds over the child's own upstream time.

Starts an `agenthost serve` with the in-process scripted provider (an upstream whose time
is exactly the `!sleep MS` a request asks for), a child agent and a parent that lists it
as a sub-agent, then times, one request at a time through the real HTTP API:

- plain: the child called directly with `!sleep MS` (one model call, one request);
- tree: the parent, whose model calls the child as a tool with that same input, then
  answers from the tool's result (three model calls: parent, child, parent).

Both include the child's upstream time and one request's handling, so the difference of
the medians is what the graph adds per sub-agent call: the tool round trip, the child's
fresh run with its own budget and ledger row, and the parent's two scripted steps. The
target is 1 ms.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.procs import BENCH_EMAIL, Gateway, write_config

API = "/api/agents/v1/chat/completions"
TARGET_MS = 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gateway(folder: Path) -> tuple[Gateway, str, str]:
    """A server with a scripted child agent and a parent listing it; (gateway, child, parent)."""
    write_config(folder, "http://127.0.0.1:9/v1", None, None)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["providers"]["scripted"] = {"type": "scripted"}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    gateway = Gateway(folder, _free_port())
    gateway.cli("users", "add", BENCH_EMAIL)
    gateway.key = gateway.cli("keys", "create", BENCH_EMAIL, "--name", "bench")
    common = ["--owner", BENCH_EMAIL, "--provider", "scripted", "--model", "scripted-model"]
    child = gateway.cli("agents", "create", "--name", "child", *common)
    parent = gateway.cli("agents", "create", "--name", "parent", "--subagents", child, *common)
    return gateway, child, parent


def _time(client: httpx.Client, key: str, model: str, text: str, count: int) -> list[float]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    headers = {"authorization": f"Bearer {key}"}
    took: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        reply = client.post(API, json=body, headers=headers)
        took.append((time.perf_counter() - started) * 1000)
        if reply.status_code != 200:
            raise RuntimeError(f"{reply.status_code}: {reply.text[:500]}")
    return took


def measure(requests: int, child_ms: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-subagents-") as tmp:
        gateway, child, parent = _gateway(Path(tmp))
        gateway.start(workers=1, pin=None)
        try:
            with httpx.Client(base_url=gateway.url, timeout=60) as client:
                sleep = f"!sleep {child_ms:g}"
                call = "!call child " + json.dumps({"input": sleep})
                _time(client, gateway.key, parent, call, 5)  # warm up both paths
                _time(client, gateway.key, child, sleep, 5)
                plain = _time(client, gateway.key, child, sleep, requests)
                tree = _time(client, gateway.key, parent, call, requests)
        finally:
            gateway.stop()
    overhead = statistics.median(tree) - statistics.median(plain)
    return {
        "requests": requests,
        "child_upstream_ms": child_ms,
        "plain_median_ms": round(statistics.median(plain), 3),
        "tree_median_ms": round(statistics.median(tree), 3),
        "overhead_per_subagent_call_ms": round(overhead, 3),
        "target_ms": TARGET_MS,
        "meets_target": overhead <= TARGET_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100, help="timed requests per path")
    parser.add_argument("--child-ms", type=float, default=50.0, help="the child's upstream time")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    result = measure(args.requests, args.child_ms)
    print(  # noqa: T201 - the benchmark's report
        f"child upstream {result['child_upstream_ms']:g} ms | plain median "
        f"{result['plain_median_ms']} ms | tree median {result['tree_median_ms']} ms | "
        f"added per sub-agent call {result['overhead_per_subagent_call_ms']} ms "
        f"(target ≤ {TARGET_MS:g} ms: {'met' if result['meets_target'] else 'NOT met'})"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
