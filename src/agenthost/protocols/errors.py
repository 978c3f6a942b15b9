"""The one error shape of both interfaces, and what each domain error looks like in it.

{"error": {"message": str, "type": str, "param": str | null, "code": str | null}}

Pure: HTTP responses (`http/errors.py`), in-stream error events (SSE chunks, Open
Responses `error` events) and WebSocket error frames are all built from `describe`.
The status belongs to the wire format too: WebSocket error frames carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from agenthost import errors

# (exception class, HTTP status, error type); the first matching class wins.
_MAPPING: list[tuple[type[errors.AgentHostError], int, str]] = [
    (errors.RequestTooLarge, 413, "invalid_request_error"),
    (errors.InvalidRequest, 400, "invalid_request_error"),
    (errors.AuthenticationFailed, 401, "authentication_error"),
    (errors.InsufficientBalance, 402, "insufficient_quota"),
    (errors.PermissionDenied, 403, "permission_error"),
    (errors.NotFound, 404, "not_found_error"),
    (errors.RateLimited, 429, "rate_limit_error"),
    (errors.UpstreamTimeout, 504, "upstream_error"),
    (errors.UpstreamUnavailable, 503, "upstream_error"),
    (errors.ProviderError, 502, "upstream_error"),
    (errors.RunError, 502, "upstream_error"),
    (errors.ServerShuttingDown, 503, "server_error"),
    (errors.IdentityProviderUnavailable, 503, "server_error"),
]


def error_payload(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def internal_error() -> dict[str, Any]:
    """What a caller sees of a failure of ours (the details go to the log only)."""
    return error_payload("Internal server error.", "server_error", "internal_error")


def describe(exc: errors.AgentHostError) -> tuple[int, dict[str, Any]]:
    """Status and body for a domain error."""
    for cls, status, type_ in _MAPPING:
        if isinstance(exc, cls):
            return status, error_payload(exc.message, type_, exc.code, exc.param)
    return 500, internal_error()


def describe_any(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """`describe` for a domain error, the internal error for anything else."""
    return describe(exc) if isinstance(exc, errors.AgentHostError) else (500, internal_error())


# --- validation errors -------------------------------------------------------------

_TAGS = {
    "function_call",
    "function_call_output",
    "item_reference",
    "reasoning",
    "compaction",
    "input_text",
    "input_image",
    "input_file",
    "input_video",
    "output_text",
    "refusal",
    "summary_text",
    "reasoning_text",
    "text",
    "json_object",
    "json_schema",
}


def _is_union_label(part: Any, previous: Any) -> bool:
    """Pydantic puts union member names (`constrained-str`, `message:user`, class names,
    discriminator values) into error locations; they are not request fields."""
    if not isinstance(part, str):
        return False
    if any(c in part for c in "[]-:'") or part[:1].isupper():
        return True
    return part in _TAGS and (isinstance(previous, int) or previous == "format")


_SOURCES = ("body", "query", "path", "header")  # FastAPI's first element: not a field


def _fields(loc: tuple[Any, ...]) -> list[Any]:
    if loc and loc[0] in _SOURCES:
        loc = loc[1:]
    return [p for n, p in enumerate(loc) if n == 0 or not _is_union_label(p, loc[n - 1])]


def _depth(loc: tuple[Any, ...]) -> int:
    return len(_fields(loc))


def param_of(loc: tuple[Any, ...]) -> str | None:
    """`messages[0].content` from pydantic's `('body', 'messages', 0, 'content')`."""
    out = ""
    for part in _fields(loc):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def invalid_body(exc: ValidationError | Sequence[Any]) -> errors.InvalidRequest:
    """A 400 naming the field; of a union's errors, the deepest one is the telling one.

    Takes a pydantic error or the list of its `errors()` (FastAPI's own validation)."""
    found = list(exc.errors() if isinstance(exc, ValidationError) else exc)
    if found[0].get("type") == "json_invalid":
        return errors.InvalidRequest(
            "We could not parse the JSON body of your request.", code="invalid_json"
        )
    worst = max(found, key=lambda e: _depth(tuple(e.get("loc", ()))))  # first of the deepest
    param = param_of(tuple(worst.get("loc", ())))
    if worst.get("type") == "extra_forbidden":
        return errors.InvalidRequest(
            f"Unrecognized request argument supplied: {param}",
            code="unknown_parameter",
            param=param,
        )
    if param is None:
        return errors.InvalidRequest(
            f"Invalid request body: {worst.get('msg')}", code="invalid_value"
        )
    return errors.InvalidRequest(
        f"Invalid value for '{param}': {worst.get('msg')}", code="invalid_value", param=param
    )
