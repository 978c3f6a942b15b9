"""Prometheus metrics, recorded where things happen and served at `GET /metrics`.

Metrics live in prometheus_client's default registry, as is usual for it: recording is a
dict lookup and a locked add, cheap enough for every request. With several workers
(`serve --workers N`) `serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh folder before
the workers start, so each writes its values to memory-mapped files there and a scrape
(answered by any worker) adds up the whole server.

Labels are bounded by configuration (routes, providers, models, MCP servers) or by
fixed vocabularies (statuses, error codes, token kinds): never a user, key or free text.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# 1 ms to 5 min: the fast refusals, proxied calls, and long agent runs.
DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5, 10, 30, 60, 120, 300,
)  # fmt: skip
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)

REQUESTS = Counter(
    "agenthost_requests", "HTTP requests answered.", ["route", "status", "interface"]
)
REQUEST_SECONDS = Histogram(
    "agenthost_request_duration_seconds",
    "Time from a request's arrival to the end of its response (streams included).",
    ["route", "interface"],
    buckets=DURATION_BUCKETS,
)
FIRST_TOKEN_SECONDS = Histogram(
    "agenthost_time_to_first_token_seconds",
    "Time from a model call's start to the upstream's first output.",
    ["provider"],
    buckets=FIRST_TOKEN_BUCKETS,
)
TOKENS = Counter(
    "agenthost_tokens", "Tokens charged, as in the ledger.", ["kind", "provider", "model"]
)
CREDITS = Counter(
    "agenthost_credits_charged", "Credits charged, as in the ledger.", ["provider", "model"]
)
UPSTREAM_ERRORS = Counter(
    "agenthost_upstream_errors", "Model calls that failed upstream.", ["provider", "kind"]
)
UPSTREAM_ATTEMPTS = Counter(
    "agenthost_upstream_attempts",
    "Upstream requests made, retries included, by how each ended "
    "(served, unavailable, timeout, failed, cancelled).",
    ["provider", "outcome"],
)
FALLBACKS = Counter(
    "agenthost_fallbacks",
    "Model calls another provider served after one failed (or was skipped) before its first token.",
    ["from_provider", "to_provider"],
)
CIRCUIT_STATE = Gauge(
    "agenthost_circuit_state",
    "A provider's circuit breaker in this process: 0 closed, 1 half-open (one trial call), "
    "2 open (skipped by agents with fallbacks).",
    ["provider"],
    multiprocess_mode="max",
)
RATE_LIMITED = Counter("agenthost_rate_limited", "Requests refused by a rate limit.", ["scope"])
INSUFFICIENT_BALANCE = Counter(
    "agenthost_insufficient_balance",
    "Model calls refused because the balance (or the key's budget) could not pay.",
)
ACTIVE_STREAMS = Gauge(
    "agenthost_active_streams", "Event streams open.", multiprocess_mode="livesum"
)
ACTIVE_RUNS = Gauge("agenthost_active_runs", "Agent runs in progress.", multiprocess_mode="livesum")
MCP_CALLS = Counter("agenthost_mcp_calls", "MCP tool calls.", ["server", "outcome"])
DB_POOL_CHECKED_OUT = Gauge(
    "agenthost_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "agenthost_db_pool_size", "Database connections the pool keeps.", multiprocess_mode="livesum"
)
SETTLE_QUEUE = Gauge(
    "agenthost_settle_queue_length",
    "Ledger settles waiting to be written (queued, or deferred while the database is away).",
    multiprocess_mode="livesum",
)

TOKEN_KINDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cache_read", "cache_read_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
)


# Children by label values: `labels()` validates and locks on every call, a dict does not.
_token_children: dict[tuple[str, str], tuple[Any, ...]] = {}
_request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def charged(provider: str, model: str, tokens: dict[str, int], credits: int) -> None:
    """One ledger row's usage (`tokens` by ledger column) and the credits it cost."""
    children = _token_children.get((provider, model))
    if children is None:
        children = tuple(TOKENS.labels(kind, provider, model) for kind, _ in TOKEN_KINDS)
        children += (CREDITS.labels(provider, model),)
        _token_children[(provider, model)] = children
    for child, (_, column) in zip(children, TOKEN_KINDS, strict=False):
        count = tokens.get(column) or 0
        if count:
            child.inc(count)
    if credits:
        children[-1].inc(credits)


_first_token_children: dict[str, Any] = {}


def first_token(provider: str, seconds: float) -> None:
    child = _first_token_children.get(provider)
    if child is None:
        child = _first_token_children[provider] = FIRST_TOKEN_SECONDS.labels(provider)
    child.observe(seconds)


def requested(route: str, status: str, interface: str, seconds: float) -> None:
    """One request answered (its whole response, streams included)."""
    key = (route, status, interface)
    children = _request_children.get(key)
    if children is None:
        children = (REQUESTS.labels(*key), REQUEST_SECONDS.labels(route, interface))
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def exposition() -> bytes:
    """The text a scrape gets: this process's metrics, or every worker's."""
    folder = os.environ.get(MULTIPROCESS_ENV)
    if not folder:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def worker_exited(pid: int) -> None:
    """Drop a finished worker's live gauges (its counters still count)."""
    if os.environ.get(MULTIPROCESS_ENV):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
