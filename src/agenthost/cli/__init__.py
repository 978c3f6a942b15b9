"""The `agenthost` command. Every command exits non-zero with one clear line on error."""

from __future__ import annotations

import sys

import typer

from agenthost.cli import agents, balance, keys, serve, users  # noqa: F401  (register commands)
from agenthost.cli.base import CommandError, app
from agenthost.errors import AgentHostError

__all__ = ["app", "main"]


def main() -> None:
    try:
        app(standalone_mode=False)
    except (AgentHostError, CommandError) as exc:
        message = exc.message if isinstance(exc, AgentHostError) else str(exc)
        sys.stderr.write(f"error: {message}\n")
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("aborted\n")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(1)
