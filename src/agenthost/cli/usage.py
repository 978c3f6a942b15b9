"""`agenthost usage report`: spend per user, agent, model, key or day, from the rollups."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date
from enum import StrEnum
from typing import Annotated

import orjson
import typer

from agenthost.cli.base import CommandError, Settings, db, run, usage_app
from agenthost.storage.repositories.rollups import REPORT_COLUMNS


class By(StrEnum):
    user = "user"
    agent = "agent"
    model = "model"
    key = "key"
    day = "day"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{flag} takes a day as YYYY-MM-DD, not {value!r}") from None


@usage_app.command("report")
def usage_report(
    by: Annotated[By, typer.Option(help="Group by user, agent, model, key or day.")],
    since: Annotated[str | None, typer.Option(help="First UTC day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last UTC day (YYYY-MM-DD).")] = None,
    format: Annotated[Format, typer.Option(help="table, csv or json.")] = Format.table,
) -> None:
    """Requests, tokens and credits spent, per group (read from the usage rollups)."""
    from agenthost.storage.repositories import rollups, users

    first, last = _day(since, "--since"), _day(until, "--until")

    async def work(_: Settings) -> list[dict[str, object]]:
        async with db().session() as session:
            rows = await rollups.report(session, by.value, first, last)
            names = await users.emails_by_id(session) if by is By.user else {}
        return [{by.value: names.get(row.group, row.group) or "-", **asdict(row)} for row in rows]

    rows = run(work)
    for row in rows:
        del row["group"]
    typer.echo(_render(rows, by.value, format), nl=False)


def _render(rows: list[dict[str, object]], group: str, format: Format) -> str:
    header = (group, *REPORT_COLUMNS)
    if format is Format.json:
        return "".join(orjson.dumps(row).decode() + "\n" for row in rows)
    if format is Format.csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    cells = [[str(row[name]) for name in header] for row in rows]
    widths = [max([len(name), *(len(line[n]) for line in cells)]) for n, name in enumerate(header)]

    def line(values: list[str] | tuple[str, ...]) -> str:
        first = values[0].ljust(widths[0])
        rest = (v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip() + "\n"

    return line(header) + "".join(line(c) for c in cells)
