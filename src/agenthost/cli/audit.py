"""`agenthost audit list`: the audit log, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
import typer

from agenthost.cli.base import CommandError, Settings, app, db, run

audit_app = typer.Typer(
    help="Read the audit log of security-relevant changes.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")

_AGO = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """A UTC day or time (ISO 8601), or a time ago: `90m`, `24h`, `7d`."""
    found = _AGO.fullmatch(value.strip())
    if found:
        amount, unit = int(found.group(1)), _UNITS[found.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since takes YYYY-MM-DD, an ISO time or a time ago like 24h or 7d, not {value!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.command("list")
def audit_list(
    since: Annotated[
        str | None, typer.Option(help="From a UTC day or time, or a time ago (24h, 7d).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only changes made by this email.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only actions starting with this (api_key., user.).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Only this target (id or label).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 100,
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Security-relevant changes, newest first."""
    from agenthost.storage.repositories import audit

    first = parse_since(since) if since is not None else None
    who = actor.strip().lower() if actor else None

    async def work(_: Settings) -> list[dict[str, Any]]:
        async with db().session() as session:
            found = await audit.events(
                session, since=first, actor=who, action=action, target=target, limit=limit
            )
        return [audit.as_dict(event) for event in found]

    rows = run(work)
    if json:
        typer.echo("".join(orjson.dumps(row).decode() + "\n" for row in rows), nl=False)
        return
    for row in rows:
        details = orjson.dumps(row["details"]).decode() if row["details"] else ""
        line = f"{row['at'][:19]}Z  {row['actor']}  {row['action']}  {row['target']}  {details}"
        typer.echo(line.rstrip())
