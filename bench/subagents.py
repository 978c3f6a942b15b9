"""`python -m bench.subagents`: what one sub-agent call adds.

Starts an `agenthost serve` with the in-process scripted provider (an upstream that
answers at once, so every millisecond measured is agenthost's own), a child agent and a
parent that lists it as a sub-agent, then times through the real HTTP API, one request
at a time and the three kinds in turn (so drift of the machine hits each alike):

- plain: the child called directly (one model call);
- one call: the parent's model calls the child once, then answers from the result
  (three model calls: parent, child, parent);
- two calls: the same, with two calls of the child in the parent's one step (four
  model calls).

"two calls - one call" is what one sub-agent call adds over the child's own upstream
time: the tool round trip, the child's fresh run with its own budget, its model call's
admission and settlement, its ledger row. The parent's own steps are in both, so they
cancel. (The two calls run concurrently, but on one event loop with an upstream that
never waits their work cannot overlap.) The target is 1 ms. "one call - plain" is also
printed: a whole tree against a single agent, the parent's two model steps included.
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
WARM_UP = 10  # rounds not timed


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


def _body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def _timed(client: httpx.Client, key: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    reply = client.post(API, json=body, headers={"authorization": f"Bearer {key}"})
    took = (time.perf_counter() - started) * 1000
    if reply.status_code != 200:
        raise RuntimeError(f"{reply.status_code}: {reply.text[:500]}")
    return took


def measure(requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-subagents-") as tmp:
        gateway, child, parent = _gateway(Path(tmp))
        gateway.start(workers=1, pin=None)
        call = "!call child " + json.dumps({"input": "hello"})
        kinds = {
            "plain": _body(child, "hello"),
            "one_call": _body(parent, call),
            "two_calls": _body(parent, f"{call}\n{call}"),
        }
        took: dict[str, list[float]] = {kind: [] for kind in kinds}
        try:
            with httpx.Client(base_url=gateway.url, timeout=60) as client:
                for round_ in range(WARM_UP + requests):
                    for kind, body in kinds.items():
                        ms = _timed(client, gateway.key, body)
                        if round_ >= WARM_UP:
                            took[kind].append(ms)
        finally:
            gateway.stop()
    median = {kind: statistics.median(times) for kind, times in took.items()}
    per_call = median["two_calls"] - median["one_call"]
    return {
        "requests": requests,
        "plain_median_ms": round(median["plain"], 3),
        "one_call_median_ms": round(median["one_call"], 3),
        "two_calls_median_ms": round(median["two_calls"], 3),
        "added_per_subagent_call_ms": round(per_call, 3),
        "tree_over_plain_ms": round(median["one_call"] - median["plain"], 3),
        "target_ms": TARGET_MS,
        "meets_target": per_call <= TARGET_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per kind")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    result = measure(args.requests)
    print(  # noqa: T201 - the benchmark's report
        f"medians: plain {result['plain_median_ms']} ms | one sub-agent call "
        f"{result['one_call_median_ms']} ms | two calls {result['two_calls_median_ms']} ms\n"
        f"added per sub-agent call {result['added_per_subagent_call_ms']} ms "
        f"(target ≤ {TARGET_MS:g} ms: {'met' if result['meets_target'] else 'NOT met'}); "
        f"a one-call tree over a single agent {result['tree_over_plain_ms']} ms"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
