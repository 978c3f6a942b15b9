"""Spend reports as CSV downloads (Usage and Admin → Usage)."""

from __future__ import annotations

import csv
import io

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from agenthost.storage.repositories import agents as agent_repo
from agenthost.storage.repositories import api_keys as key_repo
from agenthost.storage.repositories import users as user_repo
from agenthost.storage.repositories.rollups import REPORT_COLUMNS

COLUMNS = REPORT_COLUMNS


async def group_names(session: AsyncSession, by: str) -> dict[str, str]:
    """What a reader knows each report group by: emails, agent names, key labels."""
    if by == "user":
        return await user_repo.emails_by_id(session)
    if by == "agent":
        return {a.id: a.name for a in await agent_repo.list_all(session)}
    if by == "key":
        return await key_repo.labels(session)
    return {}


def _cell(value: object) -> object:
    """No spreadsheet formulas from names people chose (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_response(rows: list[dict[str, object]], by: str, filename: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[by, *COLUMNS])
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
