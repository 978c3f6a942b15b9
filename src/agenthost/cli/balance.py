"""`agenthost balance …` and `agenthost db …`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agenthost.cli.base import Settings, balance_app, db, db_app, run
from agenthost.cli.users import find_user


@balance_app.command("show")
def balance_show(
    email: str,
    last: Annotated[int, typer.Option(min=0, help="How many recent transactions to list.")] = 10,
) -> None:
    """Show a user's balance and last transactions."""
    from agenthost.storage.repositories import balances

    async def work(cfg: Settings) -> tuple[int, list[Any]]:
        async with db().session() as session:
            user = await find_user(session, email)
            await balances.ensure(session, user.id, cfg.balance.start_balance)
            credits = await balances.get_credits(session, user.id) or 0
            return credits, await balances.recent_transactions(session, user.id, last)

    credits, rows = run(work)
    typer.echo(f"{email}: {credits} credits (${credits / 1_000_000:.6f})")
    for row in rows:
        tokens = f"in {row.input_tokens} out {row.output_tokens}" if row.kind == "usage" else ""
        typer.echo(
            f"{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.kind}\t{row.credits:+d}\t{row.model or ''}\t{tokens}"
        )


@balance_app.command("add")
def balance_add(email: str, credits: int) -> None:
    """Grant credits to a user (negative to deduct)."""
    from agenthost.storage.models import Transaction
    from agenthost.storage.repositories import balances

    async def work(cfg: Settings) -> int:
        async with db().session() as session:
            user = await find_user(session, email)
            await balances.ensure(session, user.id, cfg.balance.start_balance)
            row = Transaction(user_id=user.id, kind="grant", credits=credits, note="cli")
            return await balances.apply(session, row)

    typer.echo(f"{email}: {run(work)} credits")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""

    async def work(_: Settings) -> None:
        return None

    run(work)  # `run` upgrades before every command
    typer.echo("database is up to date")
