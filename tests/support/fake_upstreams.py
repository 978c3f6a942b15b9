"""What tests of a provider share: its fake upstream in a process of its own, and a caller
of agenthost's API that can read back what that upstream received."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.fakes.process import start_process, stop_process
from tests.support.server import Server


@contextmanager
def fake_upstream(script: Path | str, *args: str, path: str = "") -> Iterator[str]:
    """Run the fake `script` on a free port; yields its URL (root, then `path`)."""
    proc, port = start_process([str(script), *args, "--port", "0"])
    try:
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        stop_process(proc)


@functools.cache
def api_client(base_url: str, key: str) -> openai.OpenAI:
    """One client per server and key for a whole test module: a client per call leaves
    its pooled sockets to the garbage collector, whose ResourceWarning then fails
    whichever test runs next."""
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)


@dataclass
class UpstreamCaller:
    """A user's key and agent on a server whose provider is a fake upstream at `root`."""

    server: Server
    root: str
    key: str
    agent: str

    def client(self) -> openai.OpenAI:
        return api_client(self.server.api, self.key)

    def ask(self, text: str, agent: str | None = None, **extra: Any) -> Any:
        return self.client().chat.completions.create(
            model=agent or self.agent, messages=[{"role": "user", "content": text}], **extra
        )

    def received(self) -> list[dict[str, Any]]:
        """Every request the fake upstream logged (path, headers, body, outcome…)."""
        seen: list[dict[str, Any]] = httpx.get(f"{self.root}/_requests", timeout=10).json()
        return seen

    def sent(self, word: str) -> list[dict[str, Any]]:
        """What the fake upstream received for requests mentioning `word`."""
        return [r for r in self.received() if word in json.dumps(r.get("body", {}))]
