"""`agenthost keys …`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from agenthost.cli.base import CommandError, Settings, db, keys_app, run
from agenthost.cli.users import find_user

# --- keys ----------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    email: str,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    expires_days: Annotated[int | None, typer.Option(min=1, help="Days until it expires.")] = None,
    agents: Annotated[
        str | None, typer.Option(help="Limit the key to these agent ids (comma-separated).")
    ] = None,
) -> None:
    """Create an API key and print it once."""
    from agenthost.auth.api_keys import generate_key
    from agenthost.storage.models import utcnow
    from agenthost.storage.repositories import api_keys

    scope = [a.strip() for a in agents.split(",") if a.strip()] if agents else None
    plain, prefix, key_hash = generate_key()

    async def work(_: Settings) -> str:
        async with db().session() as session:
            user = await find_user(session, email)
            expires = utcnow() + timedelta(days=expires_days) if expires_days else None
            row = await api_keys.create(
                session,
                user_id=user.id,
                name=name,
                prefix=prefix,
                key_hash=key_hash,
                expires_at=expires,
                agent_scope=scope,
            )
            return row.id

    key_id = run(work)
    typer.echo(f"created key {key_id}; it is shown only this once:", err=True)
    typer.echo(plain)


@keys_app.command("list")
def keys_list(email: str) -> None:
    """List a user's keys (prefixes only)."""
    from agenthost.storage.repositories import api_keys

    async def work(_: Settings) -> list[Any]:
        async with db().session() as session:
            return await api_keys.list_for_user(session, (await find_user(session, email)).id)

    for key in run(work):
        state = "revoked" if key.revoked_at else "active"
        expires = key.expires_at.isoformat() if key.expires_at else "never"
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        typer.echo(
            f"{key.id}\t{key.prefix}…\t{key.name}\t{state}\texpires {expires}\tlast used {used}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id."""
    from agenthost.storage.repositories import api_keys

    async def work(_: Settings) -> None:
        async with db().session() as session:
            if await api_keys.revoke(session, key_id) is None:
                raise CommandError(f"no key with id {key_id}")

    run(work)
    typer.echo(f"revoked {key_id}")
