"""The web interface: server-rendered pages (Jinja2), plain CSS and a little JavaScript."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from agenthost.web.context import csrf_guard
from agenthost.web.errors import WebError, handle_web_error, html_error
from agenthost.web.views import (
    admin,
    admin_audit,
    admin_groups,
    admin_usage,
    agents,
    auth,
    keys,
    oidc,
    playground,
    provider_keys,
    usage,
    user_secrets,
    web_sessions,
)

STATIC = Path(__file__).parent / "static"


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
        agents,
        usage,
        admin,
        admin_audit,
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
