"""The hot-path writes (`Database.write` with driver-level statements) on both backends:
what they store reads back through the ORM exactly as if Core had written it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from agenthost.storage.database import Database
from agenthost.storage.models import Transaction
from agenthost.storage.repositories import balances
from agenthost.storage.repositories import responses as stored
from tests.storage.test_repositories import new_user


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def test_ledger_rows_and_balance_change_read_back_through_the_orm(db: Database) -> None:
    user_id = await new_user(db)
    async with db.session() as session:
        await balances.ensure(session, user_id, 1_000)
    rates = {"input": 2.5, "output": 10, "nested": {"a": [1, "two"]}}
    row = {"user_id": user_id, "kind": "usage", "model": "m-1", "input_tokens": 7}
    row |= {"output_tokens": 3, "rates": rates, "credits": -42, "request_id": "req_1"}

    def settle(connection: Connection) -> int:
        balances.insert_transactions(connection, [row, {**row, "credits": -8}])
        return balances.change_balance(connection, user_id, -50)

    before = datetime.now(UTC)
    assert await db.write(settle) == 950
    async with db.session() as session:
        assert await balances.get_credits(session, user_id) == 950
        found = (
            await session.scalars(
                select(Transaction)
                .where(Transaction.user_id == user_id, Transaction.kind == "usage")
                .order_by(Transaction.id)
            )
        ).all()
    assert [t.credits for t in found] == [-42, -8]
    first = found[0]
    assert first.rates == rates and first.model == "m-1" and first.request_id == "req_1"
    assert (first.input_tokens, first.output_tokens, first.cache_read_tokens) == (7, 3, 0)
    assert first.api_key_id is None and first.note is None  # the model's defaults
    assert before - timedelta(seconds=5) < _aware(first.created_at) < before + timedelta(minutes=1)


async def test_a_failing_write_rolls_back_the_whole_transaction(db: Database) -> None:
    user_id = await new_user(db)
    async with db.session() as session:
        await balances.ensure(session, user_id, 500)

    def half_then_fail(connection: Connection) -> None:
        balances.insert_transactions(connection, [{"user_id": user_id, "kind": "usage"}])
        raise RuntimeError("stop")

    with pytest.raises(Exception):  # noqa: B017 - the NOT NULL credits or our own error
        await db.write(half_then_fail)
    async with db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.user_id == user_id)
        )
    assert count == 0


def _body(response_id: str, status: str, output: list[Any]) -> dict[str, Any]:
    return {"id": response_id, "object": "response", "status": status, "output": output}


async def test_a_stored_response_is_encoded_when_bound_and_finished_once(db: Database) -> None:
    user_id = await new_user(db)
    response_id = f"resp_{user_id[-8:]}"
    body = _body(response_id, "in_progress", [])
    insert = stored.create(
        db.write_dialect,
        body=body,
        user_id=user_id,
        agent_id="agent_x",
        api_key_id=None,
        input_items=[{"type": "message", "role": "user", "content": "hé ✓"}],
    )
    body["output"].append({"type": "message", "content": "added after binding"})
    await db.write(insert.execute)
    async with db.session() as session:
        row = await stored.get_owned(session, response_id, user_id)
    assert row is not None and row.status == "in_progress"
    assert row.body["output"] == []  # what it was when bound, not what it became
    assert row.input_items[0]["content"] == "hé ✓"

    final = _body(response_id, "completed", [{"type": "message", "content": "done"}])
    finish = stored.finish(db.write_dialect, final)
    assert (await db.write(finish.execute)).rowcount == 1
    again = stored.finish(db.write_dialect, _body(response_id, "failed", []))
    assert (await db.write(again.execute)).rowcount == 0  # already ended: left alone
    async with db.session() as session:
        row = await stored.get_owned(session, response_id, user_id)
    assert row is not None and row.status == "completed" and row.body == final
