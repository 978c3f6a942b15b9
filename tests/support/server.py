"""Runs a real `agenthost serve` process on loopback for tests, with its own config and database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_KEY = "sk-upstream-secret-never-shown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def base_config(folder: Path, upstream_url: str | None, database_url: str | None) -> dict[str, Any]:
    providers: dict[str, Any] = {"scripted": {"type": "scripted"}}
    if upstream_url:
        providers["fake"] = {
            "type": "openai",
            "base_url": upstream_url,
            "api_key": UPSTREAM_KEY,
            "max_retries": 1,
            "models": ["fake-model"],
        }
    return {
        "database_url": database_url or f"sqlite+aiosqlite:///{folder}/agenthost.db",
        "data_dir": str(folder),
        "secret_key": "test-secret-key-0123456789abcdef",
        "providers": providers,
        "balance": {"start_balance": 50_000_000},
        "limits": {
            "per_key": {
                "requests_per_minute": 100_000,
                "tokens_per_minute": 100_000_000,
                "concurrent_requests": 1_000,
            }
        },
        "bootstrap": {"default_agent": False},
    }


@dataclass
class Server:
    """A running agenthost; `cli()` runs the real CLI against the same config."""

    folder: Path
    config_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.folder / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api/agents/v1"

    def env(self) -> dict[str, str]:
        return {**os.environ, "AGENTHOST_CONFIG": str(self.config_path), "PYTHONUNBUFFERED": "1"}

    def cli(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "agenthost", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"agenthost {' '.join(args)} failed: {result.stderr}")
        return result

    def add_user(self, email: str, role: str = "user") -> None:
        self.cli("users", "add", email, "--role", role)

    def create_key(self, email: str, *extra: str) -> str:
        return self.cli("keys", "create", email, "--name", "test", *extra).stdout.strip()

    def create_agent(
        self, owner: str, provider: str = "scripted", model: str = "m", *extra: str
    ) -> str:
        return self.cli(
            "agents",
            "create",
            "--owner",
            owner,
            "--name",
            "test agent",
            "--provider",
            provider,
            "--model",
            model,
            *extra,
        ).stdout.strip()

    def start(self, workers: int = 1) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = self._spawn(workers, log)
        deadline = time.monotonic() + 120  # a busy 2-core machine can take a minute
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agenthost exited: {self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"agenthost did not start: {self.log()[-3000:]}")

    def _spawn(self, workers: int, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agenthost",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def running_server(
    folder: Path,
    upstream_url: str | None = None,
    overrides: dict[str, Any] | None = None,
    database_url: str | None = None,
    start: bool = True,
) -> Iterator[Server]:
    folder.mkdir(parents=True, exist_ok=True)
    config = deep_merge(base_config(folder, upstream_url, database_url), overrides or {})
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    server = Server(folder=folder, config_path=config_path, port=free_port())
    try:
        if start:
            server.start()
        yield server
    finally:
        server.stop()
