"""Stored Open Responses responses: one row per response, owned by one user.

`input_items` holds this request's normalised input; `body` the response object (its
`output` included). The context of a response is its ancestors' input and output, then its
own: see `context_items`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, String, Table, bindparam, delete, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from agenthost.storage.driver_sql import BoundStatement, DriverStatement
from agenthost.storage.models import StoredResponse, utcnow

RUNNING = ("queued", "in_progress")
MAX_CHAIN = 10_000
REFERENCE_SCAN = 200


# Written for every stored response: sent to the driver directly (see driver_sql.py).
_RESPONSES = cast(Table, StoredResponse.__table__)
_INSERT = DriverStatement(
    _RESPONSES.insert().values({c.name: bindparam(c.name) for c in _RESPONSES.columns})
)
_FINISH = DriverStatement(
    _RESPONSES.update()
    .where(
        _RESPONSES.c.id == bindparam("response_id", type_=String),
        _RESPONSES.c.status.in_([bindparam(f"open{i}", type_=String) for i in range(3)]),
    )
    .values(
        status=bindparam("status", type_=String),
        body=bindparam("body", type_=_RESPONSES.c.body.type),
        updated_at=bindparam("now", type_=_RESPONSES.c.updated_at.type),
        answered_by=bindparam("answered_by", type_=String),
    )
)


def create(
    dialect: Dialect,
    *,
    body: dict[str, Any],
    user_id: str,
    agent_id: str,
    api_key_id: str | None,
    input_items: list[dict[str, Any]],
    answered_by: str | None = None,
) -> BoundStatement:
    """The insert of a new response, encoded now: the body keeps changing as it runs."""
    now = utcnow()
    row = {
        "id": body["id"],
        "user_id": user_id,
        "agent_id": agent_id,
        "api_key_id": api_key_id,
        "status": body["status"],
        "previous_response_id": body.get("previous_response_id"),
        "input_items": input_items,
        "body": body,
        "created_at": now,
        "updated_at": now,
        "answered_by": answered_by,
    }
    return _INSERT.bind(dialect, row)


AgentScope = tuple[str, ...] | None  # an API key limited to these agents (None: all)


def _in_scope(row: StoredResponse, agent_scope: AgentScope) -> bool:
    return agent_scope is None or row.agent_id in agent_scope


async def get_owned(
    session: AsyncSession, response_id: str, user_id: str, agent_scope: AgentScope = None
) -> StoredResponse | None:
    """The user's response, if made through an agent the caller's key may use."""
    row = await session.get(StoredResponse, response_id)
    if row is None or row.user_id != user_id or not _in_scope(row, agent_scope):
        return None
    return row


def finish(
    dialect: Dialect, body: dict[str, Any], answered_by: str | None = None
) -> BoundStatement:
    """The final body's write, effective unless the response already ended (a cancelled
    run may still write its partial output after the cancel marked it)."""
    last_open = "cancelled" if body["status"] == "cancelled" else RUNNING[0]
    values = {
        "response_id": body["id"],
        "open0": RUNNING[0],
        "open1": RUNNING[1],
        "open2": last_open,
        "status": body["status"],
        "body": body,
        "now": utcnow(),
        "answered_by": answered_by,
    }
    return _FINISH.bind(dialect, values)


async def set_status(session: AsyncSession, response_id: str, status: str) -> None:
    row = await session.get(StoredResponse, response_id)
    if row is not None and row.status in RUNNING:
        row.status = status
        row.body = dict(row.body, status=status)
        row.updated_at = utcnow()


async def status_of(session: AsyncSession, response_id: str) -> str | None:
    result = await session.execute(
        select(StoredResponse.status).where(StoredResponse.id == response_id)
    )
    return result.scalar_one_or_none()


async def state_of(
    session: AsyncSession, response_id: str
) -> tuple[str | None, dict[str, Any] | None]:
    """Status and body; (None, None) when there is no such response."""
    row = (
        await session.execute(
            select(StoredResponse.status, StoredResponse.body).where(
                StoredResponse.id == response_id
            )
        )
    ).first()
    return (row.status, dict(row.body)) if row is not None else (None, None)


async def delete_owned(session: AsyncSession, response_id: str, user_id: str) -> bool:
    result = await session.execute(
        delete(StoredResponse).where(
            StoredResponse.id == response_id, StoredResponse.user_id == user_id
        )
    )
    return bool(getattr(result, "rowcount", 0))


def own_items(row: StoredResponse) -> list[dict[str, Any]]:
    """This response's input and output items, in order."""
    output = row.body.get("output") or []
    return list(row.input_items or []) + list(output)


async def context_items(
    session: AsyncSession, row: StoredResponse, agent_scope: AgentScope = None
) -> list[dict[str, Any]] | None:
    """Every item of the conversation up to and including `row`, oldest first; None
    when an earlier link was made through an agent outside `agent_scope` (a scoped key
    reads nothing another agent produced)."""
    chain = [row]
    seen = {row.id}
    while chain[-1].previous_response_id and len(chain) < MAX_CHAIN:
        parent = await get_owned(session, chain[-1].previous_response_id, row.user_id)
        if parent is not None and not _in_scope(parent, agent_scope):
            return None
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        chain.append(parent)
    items: list[dict[str, Any]] = []
    for link in reversed(chain):
        items.extend(own_items(link))
    return items


async def find_items(
    session: AsyncSession, user_id: str, wanted: set[str], agent_scope: AgentScope = None
) -> dict[str, dict[str, Any]]:
    """Items with the given ids among the user's most recent stored responses (made
    through the agents of `agent_scope`, when set)."""
    query = select(StoredResponse).where(StoredResponse.user_id == user_id)
    if agent_scope is not None:
        query = query.where(StoredResponse.agent_id.in_(agent_scope))
    rows = await session.execute(
        query.order_by(StoredResponse.created_at.desc()).limit(REFERENCE_SCAN)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows.scalars():
        for item in own_items(row):
            item_id = item.get("id")
            if item_id in wanted and item_id not in found:
                found[item_id] = item
    return found


# --- leases: a running response's `updated_at` is renewed by the worker running it --------


def renew(connection: Connection, response_ids: list[str], now: datetime) -> None:
    """Mark these running responses alive (their worker is still running them)."""
    connection.execute(
        update(StoredResponse)
        .where(StoredResponse.id.in_(response_ids), StoredResponse.status.in_(RUNNING))
        .values(updated_at=now)
    )


def end_lost(
    connection: Connection, stale_before: datetime, now: datetime, limit: int = 100
) -> list[str]:
    """End running responses not renewed since `stale_before` (their worker died) as
    `failed` with `worker_lost`; their ids. Each update re-checks the row, so a worker
    that renewed it meanwhile, or another sweeper, wins."""
    rows = connection.execute(
        select(StoredResponse.id, StoredResponse.body)
        .where(StoredResponse.status.in_(RUNNING), StoredResponse.updated_at < stale_before)
        .limit(limit)
    ).all()
    ended = []
    for response_id, body in rows:
        error = {
            "code": "worker_lost",
            "message": "The server process running this response stopped before it "
            "finished (a crash or a forced restart). Usage recorded before that was charged.",
        }
        final = dict(body or {}, status="failed", error=error)
        done = connection.execute(
            update(StoredResponse)
            .where(
                StoredResponse.id == response_id,
                StoredResponse.status.in_(RUNNING),
                StoredResponse.updated_at < stale_before,
            )
            .values(status="failed", body=final, updated_at=now)
        )
        if getattr(done, "rowcount", 0):
            ended.append(response_id)
    return ended
