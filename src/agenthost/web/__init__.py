"""The web interface: server-rendered pages (Jinja2), plain CSS and a little JavaScript."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from agenthost.web.context import csrf_guard
from agenthost.web.errors import WebError, handle_web_error, html_error, too_large
from agenthost.web.views import (
    admin,
    admin_accounts,
    admin_audit,
    admin_groups,
    admin_keys,
    admin_usage,
    agents,
    auth,
    keys,
    oidc,
    password,
    playground,
    provider_keys,
    usage,
    user_secrets,
    web_sessions,
)

STATIC = Path(__file__).parent / "static"
# The body limit of web pages (a smaller one of `limits.max_body_bytes` wins). The largest
# valid form, 100,000 characters of instructions, is about 120 KB as a browser encodes
# English text and under 1 MB for any text of 3-byte characters.
FORM_MAX_BYTES = 1_048_576


def build_router() -> APIRouter:
    # The CSRF check runs for every POST of every page, before the view.
    router = APIRouter(dependencies=[Depends(csrf_guard)], include_in_schema=False)
    for module in (
        auth,
        oidc,
        keys,
        user_secrets,
        provider_keys,
        web_sessions,
        password,
        agents,
        usage,
        admin,
        admin_accounts,
        admin_audit,
        admin_keys,
        admin_groups,
        admin_usage,
        playground,
    ):
        router.include_router(module.router)
    return router


def install(app: FastAPI) -> None:
    """Mount the pages, static files and the HTML error pages."""
    app.include_router(build_router())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(WebError, handle_web_error)
    app.state.html_error = html_error
    app.state.html_too_large = too_large
