"""Fill a migrated SQLite database with stored responses and ledger rows, in SQL batches.

Used by the `growth` scenario before the server starts: the same figures must hold when
the database is large. Rows belong to the bench user, the worst case for per-user lookups.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BATCH = 50_000


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _columns(db: sqlite3.Connection, table: str) -> dict[str, tuple[bool, bool]]:
    """Column → (required: NOT NULL without default, primary key)."""
    info = db.execute(f"PRAGMA table_info({table})").fetchall()
    return {row[1]: (bool(row[3]) and row[4] is None, bool(row[5])) for row in info}


def _insert(
    db: sqlite3.Connection, table: str, values: dict[str, Any], rows: Iterator[tuple[Any, ...]]
) -> None:
    """Insert rows shaped as `values`' keys; refuse if the table needs a column we lack."""
    columns = _columns(db, table)
    missing = [
        c for c, (required, pk) in columns.items() if required and not pk and c not in values
    ]
    if missing:
        raise RuntimeError(f"cannot seed {table}: no value for required columns {missing}")
    names = [name for name in values if name in columns]
    keep = [i for i, name in enumerate(values) if name in columns]
    sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(tuple(row[i] for i in keep))
        if len(batch) >= BATCH:
            db.executemany(sql, batch)
            batch.clear()
    if batch:
        db.executemany(sql, batch)


def seed(path: Path, agent_id: str, responses: int, transactions: int) -> dict[str, Any]:
    started = time.monotonic()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    user_id, key_id = db.execute(
        "SELECT users.id, api_keys.id FROM users JOIN api_keys ON api_keys.user_id = users.id "
        "WHERE users.email = 'bench@example.com'"
    ).fetchone()
    origin = datetime.now(UTC) - timedelta(days=365)
    rates = json.dumps({"input": 1_000_000, "output": 4_000_000})
    ledger = {
        "user_id": user_id, "kind": "usage", "api_key_id": key_id, "agent_id": agent_id,
        "request_id": None, "model": "bench-model", "input_tokens": 8, "cache_write_tokens": 0,
        "cache_read_tokens": 0, "output_tokens": 16, "reasoning_tokens": 0, "rates": rates,
        "credits": -72, "note": None, "created_at": None,
    }  # fmt: skip
    _insert(db, "transactions", ledger, _ledger_rows(ledger, origin, transactions))
    _roll_up(db)
    body = json.dumps({"object": "response", "status": "completed", "output": []})
    stored = {
        "id": None, "user_id": user_id, "agent_id": agent_id, "api_key_id": key_id,
        "status": "completed", "previous_response_id": None, "input_items": "[]", "body": body,
        "created_at": None, "updated_at": None,
    }  # fmt: skip
    _insert(db, "responses", stored, _response_rows(stored, origin, responses))
    db.commit()
    db.close()
    seconds = round(time.monotonic() - started, 1)
    return {"responses": responses, "transactions": transactions, "seconds": seconds}


def _roll_up(db: sqlite3.Connection) -> None:
    """What the settles would have added to the usage rollups, per day and group."""
    db.execute("DELETE FROM usage_rollups")
    db.execute(
        "INSERT INTO usage_rollups (day, user_id, api_key_id, agent_id, model, requests,"
        " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
        " reasoning_tokens, credits)"
        " SELECT substr(created_at, 1, 10), user_id, COALESCE(api_key_id, ''),"
        " COALESCE(agent_id, ''), COALESCE(model, ''), COUNT(*), SUM(input_tokens),"
        " SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),"
        " SUM(reasoning_tokens), -SUM(credits) FROM transactions WHERE kind = 'usage'"
        " GROUP BY 1, 2, 3, 4, 5"
    )


def _ledger_rows(
    template: dict[str, Any], origin: datetime, count: int
) -> Iterator[tuple[Any, ...]]:
    values = list(template.values())
    request_at = list(template).index("request_id")
    created_at = list(template).index("created_at")
    for number in range(count):
        values[request_at] = f"chatcmpl-seed{number:010d}"
        values[created_at] = _stamp(origin + timedelta(seconds=number * 30))
        yield tuple(values)


def _response_rows(
    template: dict[str, Any], origin: datetime, count: int
) -> Iterator[tuple[Any, ...]]:
    values = list(template.values())
    names = list(template)
    for number in range(count):
        stamp = _stamp(origin + timedelta(seconds=number * 300))
        values[names.index("id")] = f"resp_seed{number:020d}"
        values[names.index("created_at")] = stamp
        values[names.index("updated_at")] = stamp
        yield tuple(values)
