"""Text a database column can hold: PostgreSQL refuses NUL characters in text, and no
UTF-8 column holds a lone surrogate. Checked where such text arrives from outside (ids,
names, emails) so it is a 400 naming the field on every backend, not a database error
that looks like an outage."""

from __future__ import annotations

from agenthost.errors import InvalidRequest


def problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text"
    return None


def require_storable(value: str | None, param: str) -> None:
    if value is None:
        return
    found = problem(value)
    if found is not None:
        raise InvalidRequest(f"'{param}' {found}.", code="invalid_value", param=param)
