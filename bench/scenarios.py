"""The measured cells: one interface, streaming or not, at one concurrency, through
agenthost or straight at the fake upstream, with the server's CPU and RSS around it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench.procs import Gateway, LoadGenerator, Monitor

API = "/api/agents/v1"


@dataclass(frozen=True, slots=True)
class Timing:
    ttft_ms: float
    itl_ms: float
    tokens: int

    def directive(self) -> str:
        return f"!bench ttft={self.ttft_ms:g} itl={self.itl_ms:g} tokens={self.tokens}"

    @property
    def answer_seconds(self) -> float:
        """How long the upstream takes over one whole answer."""
        return (self.ttft_ms + self.itl_ms * max(self.tokens - 1, 0)) / 1000


INSTANT = Timing(0, 0, 16)
PACED = Timing(200, 5, 200)
HELD = Timing(0, 60_000, 2)  # one token at once, the next a minute later: an idle open stream


@dataclass(frozen=True, slots=True)
class Interface:
    """How to call one API shape and where its token count shows."""

    name: str
    path: str
    marker: str  # what an SSE frame carrying output text contains
    usage_key: str  # the JSON key with a non-streaming answer's output tokens

    def body(self, model: str, text: str, stream: bool) -> dict[str, Any]:
        if self.name == "responses":
            return {"model": model, "input": text, "stream": stream}
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body


TOKEN = "tok "  # the fake upstream's every token
CHAT = Interface("chat", f"{API}/chat/completions", '"content":"', "completion_tokens")
RESPONSES = Interface("responses", f"{API}/responses", '"delta":"', "output_tokens")
DIRECT = Interface("chat", "/v1/chat/completions", '"content":"', "completion_tokens")


def responses_available(gateway: Gateway) -> bool:
    """Whether the Open Responses route answers (it may not be deployed in this build)."""
    body = RESPONSES.body(gateway.agent, INSTANT.directive(), False)
    headers = {"authorization": f"Bearer {gateway.key}"}
    try:
        reply = httpx.post(gateway.url + RESPONSES.path, json=body, headers=headers, timeout=10)
    except httpx.HTTPError:
        return False
    return reply.status_code == 200


@dataclass
class Endpoint:
    """Where load goes: the gateway (with its key) or the upstream, and who to watch."""

    label: str  # agenthost | direct
    host: str
    port: int
    headers: dict[str, str]
    model: str
    monitor: Monitor

    def target(self, interface: Interface, timing: Timing, stream: bool) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "path": interface.path,
            "headers": self.headers,
            "body": interface.body(self.model, timing.directive(), stream),
            "stream": stream,
            "marker": interface.marker,
            "token": TOKEN,
            "usage_key": interface.usage_key,
        }


def measure(
    load: LoadGenerator,
    endpoint: Endpoint,
    interface: Interface,
    timing: Timing,
    stream: bool,
    concurrency: int,
    duration: float,
) -> dict[str, Any]:
    """One cell: closed-loop load, then CPU seconds per 1,000 requests and peak RSS.

    The connections start spread over one answer's time (the ramp); the figures are of
    the `duration` seconds after it."""
    command = {
        "op": "run",
        "target": endpoint.target(interface, timing, stream),
        "concurrency": concurrency,
        "duration": duration,
        "ramp": timing.answer_seconds,
    }
    cpu_before = endpoint.monitor.cpu_seconds()
    endpoint.monitor.start_sampling()
    result = load.call(command)
    peak = endpoint.monitor.stop_sampling()
    cpu = endpoint.monitor.cpu_seconds() - cpu_before
    requests = result["answers_total"]  # the CPU covers the ramp and the last answers too
    return {
        "target": endpoint.label,
        "interface": interface.name,
        "stream": stream,
        "concurrency": concurrency,
        **result,
        "cpu_s_per_1k": round(cpu / requests * 1000, 3) if requests else None,
        "peak_rss_mb": round(peak / 2**20, 1),
    }


def warm_up(load: LoadGenerator, endpoint: Endpoint, interfaces: list[Interface]) -> None:
    for interface in interfaces:
        for stream in (False, True):
            target = endpoint.target(interface, INSTANT, stream)
            load.call({"op": "run", "target": target, "concurrency": 8, "duration": 0.5})


def open_streams(
    load: LoadGenerator, endpoint: Endpoint, count: int, settle: float = 1.0
) -> dict[str, Any]:
    """RSS per open stream: hold `count` idle streams open, compare with the RSS before."""
    time.sleep(0.5)
    baseline = endpoint.monitor.rss()
    target = endpoint.target(CHAT if endpoint.label == "agenthost" else DIRECT, HELD, True)
    held = load.call({"op": "hold", "target": target, "count": count, "timeout": 60})
    endpoint.monitor.start_sampling()
    time.sleep(settle)
    peak = endpoint.monitor.stop_sampling()
    load.call({"op": "release"})
    opened = held["open"]
    per_stream = (peak - baseline) / opened if opened else None
    return {
        "target": endpoint.label,
        "requested": count,
        "open": opened,
        "open_seconds": round(held["seconds"], 2),
        "baseline_rss_mb": round(baseline / 2**20, 1),
        "rss_open_mb": round(peak / 2**20, 1),
        "rss_per_stream_kb": round(per_stream / 1024, 1) if per_stream is not None else None,
    }
