"""The Jinja2 environment of the web interface (autoescaping on, built once on first use)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:  # SQLite returns naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: int | float | None) -> str:
    return "0" if value is None else f"{value:,}"


@cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(HERE / "templates"))
    found.env.filters["when"] = _when
    found.env.filters["number"] = _number
    return found
