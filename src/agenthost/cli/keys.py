"""`agenthost keys …`."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from agenthost import text_bounds
from agenthost.cli.base import CommandError, Settings, db, keys_app, run
from agenthost.cli.users import find_user
from agenthost.errors import InvalidRequest

MAX_CREDITS = 10**15  # a billion USD: far beyond any real budget, inside every integer type


class BudgetPeriod(StrEnum):
    day = "day"
    week = "week"
    month = "month"


# --- keys ----------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    email: str,
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    expires_days: Annotated[int | None, typer.Option(min=1, help="Days until it expires.")] = None,
    agents: Annotated[
        str | None, typer.Option(help="Limit the key to these agent ids (comma-separated).")
    ] = None,
    max_credits: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_CREDITS, help="Cap the key's spend (credits) within --budget-period."
        ),
    ] = None,
    budget_period: Annotated[
        BudgetPeriod | None,
        typer.Option(help="day, week or month (UTC); without it the cap counts all spend."),
    ] = None,
) -> None:
    """Create an API key and print it once."""
    if budget_period is not None and max_credits is None:
        raise CommandError("--budget-period needs --max-credits")
    try:
        text_bounds.check_name(name, label="The key name")
    except InvalidRequest as exc:
        raise CommandError(f"--name: {exc.message}") from None
    from agenthost.auth.api_keys import generate_key
    from agenthost.storage.models import utcnow
    from agenthost.storage.repositories import agents as agents_repo
    from agenthost.storage.repositories import api_keys

    scope = [a.strip() for a in agents.split(",") if a.strip()] if agents else None
    plain, prefix, key_hash = generate_key()

    async def work(_: Settings) -> str:
        async with db().session() as session:
            user = await find_user(session, email)
            for agent_id in scope or []:
                if await agents_repo.get_callable(session, agent_id, user.id, user.role) is None:
                    raise CommandError(
                        f"--agents: {agent_id!r} is not an agent {email} can call "
                        "(see `agenthost agents list`)"
                    )
            expires = utcnow() + timedelta(days=expires_days) if expires_days else None
            row = await api_keys.create(
                session,
                user_id=user.id,
                name=name,
                prefix=prefix,
                key_hash=key_hash,
                expires_at=expires,
                agent_scope=scope,
                max_credits=max_credits,
                budget_period=budget_period.value if budget_period else None,
            )
            return row.id

    key_id = run(work)
    typer.echo(f"created key {key_id}; it is shown only this once:", err=True)
    typer.echo(plain)


@keys_app.command("list")
def keys_list(email: str) -> None:
    """List a user's keys (prefixes only) with their spend against their budget."""
    from agenthost.billing.periods import period_start
    from agenthost.storage.repositories import api_keys, rollups

    async def work(_: Settings) -> list[tuple[Any, int]]:
        async with db().session() as session:
            keys = await api_keys.list_for_user(session, (await find_user(session, email)).id)
            return [
                (key, await rollups.key_spend(session, key.id, period_start(key.budget_period)))
                for key in keys
            ]

    for key, spent in run(work):
        state = "revoked" if key.revoked_at else "active"
        expires = key.expires_at.isoformat() if key.expires_at else "never"
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        budget = f"{spent}/{key.max_credits}" if key.max_credits is not None else f"{spent}/-"
        period = key.budget_period or ("ever" if key.max_credits is not None else "")
        typer.echo(
            f"{key.id}\t{key.prefix}…\t{key.name}\t{state}\texpires {expires}\t"
            f"last used {used}\tspent {budget} credits{f' per {period}' if period else ''}"
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
