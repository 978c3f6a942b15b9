"""Start and stop helper processes (the fake upstream, the agenthost server) for tests.

The child's stdout and stderr are drained by threads for its whole life, so a chatty
child never blocks on a full pipe, and the last lines are kept for error messages.
"""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
import time
from typing import IO

_TAIL_LINES = 50


def _drain(
    stream: IO[str], lines: queue.Queue[str | None] | None, tail: collections.deque[str]
) -> None:
    with stream:  # closed once the child is gone (no unclosed-file warning)
        for line in stream:
            tail.append(line.rstrip("\n"))
            if lines is not None:
                lines.put(line)
    if lines is not None:
        lines.put(None)  # end of output: the child exited or closed stdout


def start_process(
    args: list[str],
    ready_prefix: str = "READY",
    timeout: float = 30,
    *,
    program: str = sys.executable,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """Run `python *args` (or `program *args`, with `env` added), wait for a stdout line
    starting with `ready_prefix`.

    Returns the process and the rest of that line (for `READY 8123`, `"8123"`). Raises
    RuntimeError, with the child's last output, if it exits or is not ready in time.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [program, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    for stream, sink in ((proc.stdout, lines), (proc.stderr, None)):
        threading.Thread(target=_drain, args=(stream, sink, tail), daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.001)) if remaining > 0 else None
        except queue.Empty:
            line = None
        if line is not None and line.startswith(ready_prefix):
            return proc, line[len(ready_prefix) :].strip()
        if line is None:
            stop_process(proc)
            output = "\n".join(tail)
            raise RuntimeError(f"{args} did not print {ready_prefix!r} in time:\n{output}")


def stop_process(proc: subprocess.Popen[str], timeout: float = 10) -> None:
    """Terminate (then kill) the process and wait for it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
