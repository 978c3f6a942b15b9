"""`agenthost secrets …`: a user's secrets for MCP server headers (`{secret.NAME}`).

Values are read from stdin (or typed without echo on a terminal) and never printed.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

import typer

from agenthost.cli.base import CommandError, Settings, db, run, secrets_app
from agenthost.cli.users import find_user

if TYPE_CHECKING:
    from agenthost.auth.user_secrets import SecretInfo, UserSecrets


def read_value(prompt: str = "secret value: ") -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    value = sys.stdin.read()
    # One trailing line break is how `echo` and here-strings end input, not part of the value.
    return value.removesuffix("\n").removesuffix("\r")


async def _store_and_user(cfg: Settings, email: str) -> tuple[UserSecrets, str]:
    from agenthost.auth.user_secrets import UserSecrets
    from agenthost.server_secret import server_secret

    async with db().session() as session:
        user_id: str = (await find_user(session, email)).id
    return UserSecrets(db(), server_secret(cfg)), user_id


@secrets_app.command("set")
def secrets_set(email: str, name: str) -> None:
    """Set or replace a user's secret; the value is read from stdin."""
    from agenthost.auth.user_secrets import check_name, check_value

    check_name(name)
    value = check_value(read_value())

    async def work(cfg: Settings) -> None:
        store, user_id = await _store_and_user(cfg, email)
        await store.put(user_id, name, value)

    run(work)
    typer.echo(f"secret {name} of {email} is set")


@secrets_app.command("list")
def secrets_list(email: str) -> None:
    """List a user's secrets: names and dates, never values."""

    async def work(cfg: Settings) -> list[SecretInfo]:
        store, user_id = await _store_and_user(cfg, email)
        return await store.describe(user_id)

    for info in run(work):
        created, updated = info.created_at.isoformat(), info.updated_at.isoformat()
        typer.echo(f"{info.name}\tcreated {created}\tupdated {updated}")


@secrets_app.command("delete")
def secrets_delete(email: str, name: str) -> None:
    """Delete a user's secret."""

    async def work(cfg: Settings) -> None:
        store, user_id = await _store_and_user(cfg, email)
        if not await store.delete(user_id, name):
            raise CommandError(f"{email} has no secret named {name}")

    run(work)
    typer.echo(f"deleted secret {name} of {email}")
