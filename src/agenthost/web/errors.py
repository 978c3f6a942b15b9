"""Errors of web pages: rendered as HTML pages (the API keeps its JSON errors)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agenthost.web import templating
from agenthost.web.security_headers import protect


class WebError(Exception):
    """A page that cannot be shown; `status` becomes the HTTP status of an error page."""

    def __init__(self, status: int, title: str, message: str = "") -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message


class LoginRequired(WebError):
    def __init__(self) -> None:
        super().__init__(401, "Sign in required")


def not_found(what: str = "page") -> WebError:
    return WebError(404, "Not found", f"This {what} does not exist or you cannot see it.")


def forbidden(message: str = "You do not have permission to open this page.") -> WebError:
    return WebError(403, "Forbidden", message)


def error_page(request: Request, status: int, title: str, message: str = "") -> Response:
    page = templating.templates().TemplateResponse(
        request,
        "error.html",
        {"title": title, "message": message, "status": status, "visit": None},
        status_code=status,
    )
    services = getattr(request.app.state, "services", None)
    return protect(page, services.settings.public_base_url if services else None)


def handle_web_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebError)
    if isinstance(exc, LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return error_page(request, exc.status, exc.title, exc.message)


def html_error(request: Request, status: int) -> Response:
    """Used by the app's HTTP error handler for unknown web routes."""
    titles = {
        400: "Bad request",
        404: "Not found",
        405: "Method not allowed",
        503: "Temporarily unavailable",
    }
    messages = {
        400: "A value in the address of this page is not valid. Go back and try again.",
        503: "The database cannot be reached right now. Try again in a moment.",
    }
    return error_page(request, status, titles.get(status, "Error"), messages.get(status, ""))
