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
    from agenthost.billing.meter import open_balance
    from agenthost.storage.repositories import usage

    async def work(cfg: Settings) -> tuple[int, list[Any]]:
        async with db().session() as session:
            user = await find_user(session, email)
        credits = await open_balance(db(), user.id, cfg.balance)
        async with db().session() as session:
            return credits, await usage.list_transactions(session, user.id, last)

    credits, rows = run(work)
    typer.echo(f"{email}: {credits} credits (${credits / 1_000_000:.6f})")
    for row in rows:
        typer.echo("\t".join(_transaction_fields(row)))


def _transaction_fields(row: Any) -> list[str]:
    fields = [f"{row.created_at:%Y-%m-%d %H:%M:%S}", row.kind, f"{row.credits:+d}"]
    if row.kind == "usage":
        fields += [
            row.model or "",
            f"in {row.input_tokens} (cache read {row.cache_read_tokens}, "
            f"write {row.cache_write_tokens}) out {row.output_tokens}",
            row.agent_id or "",
            row.request_id or "",
        ]
    elif row.note:
        fields.append(row.note)
    return fields


@balance_app.command("add")
def balance_add(email: str, credits: int) -> None:
    """Grant credits to a user (negative to deduct)."""
    from agenthost.billing.meter import open_balance
    from agenthost.storage.models import Transaction
    from agenthost.storage.repositories import balances

    async def work(cfg: Settings) -> int:
        async with db().session() as session:
            user = await find_user(session, email)
        await open_balance(db(), user.id, cfg.balance)
        async with db().session() as session:
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
