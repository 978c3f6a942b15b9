"""Hot-path statements sent straight to the driver, compiled once per dialect.

A Core `connection.execute()` costs about 0.2 ms of CPU per statement in SQLAlchemy
itself (cache-key generation, parameter processing, result setup), ten times what the
SQLite statement costs. `DriverStatement` compiles its statement once per dialect, binds
values with the column types' own bind processors (so JSON and datetimes are stored
exactly as Core stores them) and runs it with `exec_driver_sql`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Executable

_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[str, ...]
    processors: tuple[_Processor | None, ...]


class DriverStatement:
    """One statement whose parameters are all `bindparam`s with known types."""

    def __init__(self, statement: Executable) -> None:
        self._statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            done = self._statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            order = tuple(done.positiontup or ())
            binds = done.binds
            processors = tuple(binds[name].type.bind_processor(dialect) for name in order)
            compiled = _Compiled(done.string, order, processors)
            self._compiled[dialect.name] = compiled
        return compiled

    def _row(self, compiled: _Compiled, values: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            value if process is None else process(value)
            for value, process in zip(
                (values[name] for name in compiled.order), compiled.processors, strict=True
            )
        )

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> CursorResult[Any]:
        compiled = self._for(connection.dialect)
        return connection.exec_driver_sql(compiled.sql, self._row(compiled, values))

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        compiled = self._for(connection.dialect)
        connection.exec_driver_sql(compiled.sql, [self._row(compiled, row) for row in rows])
