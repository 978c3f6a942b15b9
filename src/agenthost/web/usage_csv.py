"""Spend reports as CSV downloads (Usage and Admin → Usage)."""

from __future__ import annotations

import csv
import io

from starlette.responses import Response

COLUMNS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "credits",
)


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
