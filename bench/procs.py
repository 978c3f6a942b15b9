"""The processes of a benchmark run: fake upstream, agenthost, load generator, and a monitor.

Each runs as its own OS process. On a machine with two or more cores the server is pinned
to core 0 and the upstream and load generator to core 1 (`taskset`), so the gateway's
figures are never inflated by the tools that measure it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH_EMAIL = "bench@example.com"
BIG = 10**15


@dataclass(frozen=True, slots=True)
class Pinning:
    """CPU lists for `taskset`; None runs unpinned."""

    server: str | None
    tools: str | None

    @classmethod
    def choose(cls, enabled: bool) -> Pinning:
        if enabled and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
            return cls(server="0", tools="1")
        return cls(server=None, tools=None)

    def describe(self) -> str:
        if self.server is None:
            return "unpinned (server, upstream and load generator share all cores)"
        return f"server on core {self.server}; fake upstream + load generator on core {self.tools}"


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the benchmark process dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pinned(cpus: str | None, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *args] if cpus else args


def _read_ready(proc: subprocess.Popen[str], what: str, timeout: float = 30) -> str:
    """The first stdout line, which the child prints once it is ready."""
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        proc.kill()
        raise RuntimeError(f"{what} did not start")
    return result[0].strip()


@contextlib.contextmanager
def upstream(pin: str | None, jwks: Path | None = None) -> Iterator[tuple[str, int]]:
    """The lean fake upstream (publishing OIDC keys when `jwks` is given); yields
    (base URL ending in /v1, pid)."""
    extra = ["--jwks", str(jwks)] if jwks is not None else []
    proc = subprocess.Popen(
        _pinned(pin, [sys.executable, "-m", "bench.upstream", "--port", "0", *extra]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=_die_with_parent,
    )
    try:
        line = _read_ready(proc, "the fake upstream")
        yield f"http://127.0.0.1:{line.split()[1]}/v1", proc.pid
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LoadGenerator:
    """The load generator process, driven by one JSON command per line."""

    def __init__(self, pin: str | None) -> None:
        self.proc = subprocess.Popen(
            _pinned(pin, [sys.executable, "-m", "bench.loadgen"]),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        _read_ready(self.proc, "the load generator")

    def call(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(orjson.dumps(command).decode() + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load generator exited")
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call({"op": "quit"})
        _stop(self.proc)


@dataclass
class Monitor:
    """CPU seconds and RSS of a process and its children, with a peak-RSS sampler."""

    pid: int
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def start_sampling(self, interval: float = 0.05) -> None:
        self.peak = self.rss()
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(interval):
                self.peak = max(self.peak, self.rss())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop_sampling(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.rss())
        return self.peak


@dataclass
class Gateway:
    """A running `agenthost serve`, its bench user's key and agent."""

    folder: Path
    port: int
    key: str = ""  # what the load calls with: the API key, or an OIDC token (--oidc)
    agent: str = ""
    proc: subprocess.Popen[bytes] | None = None
    set_up_key: str = ""  # the API key, when `key` is a token

    @property
    def config_path(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "AGENTHOST_CONFIG": str(self.config_path), "PYTHONUNBUFFERED": "1"}

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "agenthost", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"agenthost {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result.stdout.strip()

    def set_up(self) -> None:
        """The bench user, its key and an agent on the fake upstream (also migrates)."""
        self.cli("users", "add", BENCH_EMAIL)
        self.key = self.cli("keys", "create", BENCH_EMAIL, "--name", "bench")
        self.agent = self.cli(
            "agents", "create", "--owner", BENCH_EMAIL, "--name", "bench",
            "--provider", "bench", "--model", "bench-model",
        )  # fmt: skip

    def start(self, workers: int, pin: str | None) -> None:
        command = [sys.executable, "-m", "agenthost", "serve", "--port", str(self.port)]
        command += ["--workers", str(workers)]
        log: IO[bytes] = (self.folder / "server.log").open("ab")
        self.proc = subprocess.Popen(
            _pinned(pin, command),
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agenthost exited; see {self.folder / 'server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"agenthost did not start; see {self.folder / 'server.log'}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, timeout=30)
            self.proc = None


def write_config(
    folder: Path,
    upstream_url: str,
    database_url: str | None,
    redis_url: str | None,
    observability: dict[str, Any] | None = None,
    auth: dict[str, Any] | None = None,
) -> None:
    """Balance and rate limits on, with limits far above what the benchmark sends."""
    high = {"requests_per_minute": BIG, "tokens_per_minute": BIG, "concurrent_requests": 100_000}
    config = {
        "database_url": database_url or f"sqlite+aiosqlite:///{folder}/agenthost.db",
        "redis_url": redis_url,
        "data_dir": str(folder),
        "secret_key": "bench-secret-key-0123456789abcdef",
        "log_level": "WARNING",
        "providers": {
            "bench": {
                "type": "openai",
                "base_url": upstream_url,
                "api_key": "sk-bench-upstream",
                "max_retries": 0,
                "models": ["bench-model"],
            }
        },
        "balance": {"enabled": True, "start_balance": BIG},
        "limits": {"per_key": high, "per_user": high},
        "bootstrap": {"default_agent": False},
        "observability": observability or {},
        "auth": auth or {},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
