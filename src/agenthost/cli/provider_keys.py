"""`agenthost provider-keys …`: users' own keys for providers with `user_provided: true`.

Keys are read from stdin (or typed without echo on a terminal), sealed at rest, and
never printed: `list` shows the providers and dates only.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from agenthost.cli.base import CommandError, Settings, db, provider_keys_app, run
from agenthost.cli.user_secrets import read_value
from agenthost.cli.users import find_user

if TYPE_CHECKING:
    from agenthost.auth.user_secrets import SecretInfo, UserSecrets


def _user_provided(cfg: Settings, provider: str) -> None:
    config = cfg.providers.get(provider)
    if config is None or not config.user_provided:
        names = sorted(n for n, p in cfg.providers.items() if p.user_provided)
        raise CommandError(
            f"{provider!r} is not a user-provided provider "
            f"(those are: {', '.join(names) or 'none configured'})"
        )


async def _store_and_user(cfg: Settings, email: str) -> tuple[UserSecrets, str]:
    from agenthost.auth.user_secrets import UserSecrets
    from agenthost.server_secret import server_secret

    async with db().session() as session:
        user_id: str = (await find_user(session, email)).id
    return UserSecrets(db(), server_secret(cfg), kind="provider_key"), user_id


@provider_keys_app.command("set")
def provider_keys_set(
    email: str,
    provider: str,
    key_stdin: Annotated[bool, typer.Option(help="Read the key from stdin.")] = False,
) -> None:
    """Set or replace a user's key for a user-provided provider."""
    from agenthost.auth.user_secrets import check_value

    if not key_stdin and not sys.stdin.isatty():
        raise CommandError("pass --key-stdin to read the key from stdin")
    key = check_value(read_value("provider key: "))

    async def work(cfg: Settings) -> None:
        _user_provided(cfg, provider)
        store, user_id = await _store_and_user(cfg, email)
        await store.put(user_id, provider, key)

    run(work)
    typer.echo(f"{provider} key of {email} is set")


@provider_keys_app.command("list")
def provider_keys_list(email: str) -> None:
    """List the providers a user has a key for, with dates; never the keys."""

    async def work(cfg: Settings) -> list[SecretInfo]:
        store, user_id = await _store_and_user(cfg, email)
        return await store.describe(user_id)

    for info in run(work):
        created, updated = info.created_at.isoformat(), info.updated_at.isoformat()
        typer.echo(f"{info.name}\tcreated {created}\tupdated {updated}")


@provider_keys_app.command("delete")
def provider_keys_delete(email: str, provider: str) -> None:
    """Delete a user's key for a provider."""

    async def work(cfg: Settings) -> None:
        store, user_id = await _store_and_user(cfg, email)
        if not await store.delete(user_id, provider):
            raise CommandError(f"{email} has no key for {provider}")

    run(work)
    typer.echo(f"deleted the {provider} key of {email}")
