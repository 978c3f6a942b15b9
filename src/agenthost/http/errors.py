"""The one place where exceptions become HTTP responses, in the one error shape
(`protocols/errors.py` builds the bodies):

{"error": {"message": str, "type": str, "param": str | null, "code": str | null}}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from agenthost import errors
from agenthost.protocols.errors import describe, error_payload, internal_error, invalid_body

log = logging.getLogger(__name__)

_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": _NULLABLE_STRING,
                "code": _NULLABLE_STRING,
            },
        }
    },
}
_ERROR_STATUSES: dict[int | str, str] = {
    400: "Malformed JSON, a schema violation or an unsupported parameter value",
    401: "Missing, invalid, revoked or expired API key",
    402: "The balance cannot cover the request",
    403: "The key's role may not use remote agents",
    404: "Unknown agent or one this key may not see, or an unknown id",
    413: "Body over limits.max_body_bytes",
    429: "Rate limit exceeded (see Retry-After)",
    502: "The upstream model failed",
    503: "The upstream model is unavailable",
    504: "The upstream model timed out",
}
# OpenAPI `responses` for every API route: each error status, all in ERROR_SCHEMA's shape.
# `default` also keeps FastAPI from advertising a 422 that we never send (we send 400).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, text in {**_ERROR_STATUSES, "default": "Any other error"}.items()
}


def json_error(
    status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.AgentHostError)
    if isinstance(exc, errors.RequestTooLarge) and exc.limit:
        page = too_large_page(request.scope)
        if page is not None:  # a form post whose body was counted as it came
            return page(request, exc.limit)
    status, payload = describe(exc)
    headers = None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
    return json_error(status, payload, headers)


def validation_error(exc: ValidationError | RequestValidationError) -> Response:
    return json_error(*describe(invalid_body(exc.errors())))


def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError | ValidationError)
    html_error = getattr(request.app.state, "html_error", None)
    if html_error is not None and not request.url.path.startswith("/api/"):
        page: Response = html_error(request, 400)  # a web page's bad query string
        return page
    return validation_error(exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str | None:
    """Every method some route serves on this path (Starlette names only the first
    route's when several routes share a path, e.g. GET and DELETE on one resource)."""
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(r.matches(dict(probe))[0] == Match.FULL for r in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed) or None


API_BASE = "/api/agents/v1"
# Paths an SDK pointed at the wrong base URL sends: answered in JSON, naming the right one.
_API_LIKE = ("/api/", "/v1/", "/v2/", "/openai/")
_API_ENDINGS = ("/chat/completions", "/responses", "/models", "/completions", "/embeddings")


def api_like(path: str) -> bool:
    """An API path, or one an SDK with a wrong base URL sends: answered in JSON."""
    return path.startswith(_API_LIKE) or path.rstrip("/").endswith(_API_ENDINGS)


# The web layer's HTML page for a body over the limit (`app.state.html_too_large`).
TooLargePage = Callable[[Request, int], Response]


def too_large_page(scope: Scope) -> TooLargePage | None:
    """The 413 page for a web path, or None (API paths, or an app without web pages)."""
    if scope["type"] != "http" or api_like(scope["path"]):
        return None
    found = getattr(getattr(scope.get("app"), "state", None), "html_too_large", None)
    return found if callable(found) else None


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    html_error = getattr(request.app.state, "html_error", None)
    path = request.url.path
    if html_error is not None and not api_like(path):
        # Web pages get HTML error pages; the API keeps its JSON shape.
        response: Response = html_error(request, exc.status_code)
        return response
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and not path.startswith(API_BASE + "/"):
        base = str(request.base_url).rstrip("/") + API_BASE
        payload = error_payload(
            f"Unknown route {path}: the API's base URL is {base} (for example "
            f"{base}/chat/completions or {base}/responses).",
            "not_found_error",
            "not_found",
        )
    elif exc.status_code == 404:
        payload = error_payload("Unknown route.", "not_found_error", "not_found")
    elif exc.status_code == 405:
        payload = error_payload(
            "Method not allowed.", "invalid_request_error", "method_not_allowed"
        )
        allowed = _allowed_methods(request)
        if allowed:
            headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
            headers["Allow"] = allowed
    else:
        payload = error_payload(str(exc.detail), "invalid_request_error", None)
    return json_error(exc.status_code, payload, headers)


def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return json_error(500, internal_error())


# A database that cannot be reached (down, refusing connections, locked past the busy
# timeout, pool exhausted) is a 503 the client may retry, not an internal error.
_DATABASE_DOWN = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


# SQLSTATE 22021 (character_not_in_repertoire): text with a NUL reached PostgreSQL. The
# known fields are checked before (agenthost/storable.py); this catches any other.
_UNSTORABLE_TEXT = "22021"


def _database_error(request: Request, exc: Exception) -> Response:
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == _UNSTORABLE_TEXT:
        payload = error_payload(
            "A text value contains a NUL character, which cannot be stored.",
            "invalid_request_error",
            "invalid_value",
        )
        return json_error(400, payload)
    generic = type(exc) is sa_exc.DBAPIError  # drivers' connect failures arrive unclassified
    invalidated = isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    if not (isinstance(exc, _DATABASE_DOWN) or generic or invalidated):
        return _unexpected(request, exc)
    log.error("database unavailable: %s", str(exc).splitlines()[0][:300])
    return _unavailable(request)


def _unreachable(request: Request, exc: Exception) -> Response:
    """An OSError on the request path: a database (or cache) host that refuses or drops
    connections. Drivers raise these unwrapped (asyncpg's connect, for one)."""
    log.error("backing service unreachable: %s: %s", type(exc).__name__, str(exc)[:300])
    return _unavailable(request)


def _unavailable(request: Request) -> Response:
    headers = {"Retry-After": "1"}
    html_error = getattr(request.app.state, "html_error", None)
    if html_error is not None and not request.url.path.startswith("/api/"):
        page: Response = html_error(request, 503)
        page.headers.update(headers)
        return page
    payload = error_payload(
        "The database is unavailable; try again shortly.", "server_error", "database_unavailable"
    )
    return json_error(503, payload, headers)


Handler = Callable[[Request, Exception], Response]
# Exception class → handler; the most specific class of an exception's MRO wins.
_HANDLERS: dict[type[Exception], Handler] = {
    errors.AgentHostError: _domain_error,
    sa_exc.DBAPIError: _database_error,
    sa_exc.DisconnectionError: _database_error,
    sa_exc.TimeoutError: _database_error,
    OSError: _unreachable,
    RequestValidationError: _request_validation,
    ValidationError: _request_validation,
    HTTPException: _http_error,
    Exception: _unexpected,
}


def install(app: FastAPI) -> None:
    for exc_class, handler in _HANDLERS.items():
        app.add_exception_handler(exc_class, handler)


def error_response(request: Request, exc: Exception) -> Response:
    """The response `install`'s handlers give for `exc` (for the fast lane, which
    runs outside FastAPI's exception middleware)."""
    for cls in type(exc).__mro__:
        handler = _HANDLERS.get(cls)
        if handler is not None:
            return handler(request, exc)
    return _unexpected(request, exc)
