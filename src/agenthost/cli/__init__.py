"""The `agenthost` command. Every command exits non-zero with one clear line on error."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from typer.exceptions import TyperException

from agenthost.cli import (  # noqa: F401  (register commands)
    agents,
    audit,
    balance,
    groups,
    keys,
    provider_keys,
    serve,
    usage,
    user_secrets,
    users,
)
from agenthost.cli.base import CommandError, app
from agenthost.errors import AgentHostError

__all__ = ["app", "main"]


def _fail(message: str, code: int) -> NoReturn:
    # Only the first line: library errors (SQL, YAML) can run to many lines.
    first = next((line.strip() for line in message.splitlines() if line.strip()), "failed")
    sys.stderr.write(f"error: {first}\n")
    sys.exit(code)


def main() -> None:
    try:
        app(standalone_mode=False)
    except (AgentHostError, CommandError) as exc:
        _fail(exc.message if isinstance(exc, AgentHostError) else str(exc), 1)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except TyperException as exc:  # usage errors: a missing or malformed argument
        code = int(getattr(exc, "exit_code", 2))
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if not message:  # a group called without a command: its help is already shown
            sys.exit(code)
        _fail(f"{message} (see --help)", code)
    except Exception as exc:
        _fail(f"{type(exc).__name__}: {exc}", 1)
