"""Errors of web pages: rendered as HTML pages (the API keeps its JSON errors)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match

from agenthost import text_bounds
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


def error_page(
    request: Request, status: int, title: str, message: str = "", back: str | None = None
) -> Response:
    page = templating.templates().TemplateResponse(
        request,
        "error.html",
        {"title": title, "message": message, "status": status, "visit": None, "back": back},
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
        400: "A value in the address of this page is not valid. Go back and try again."
        if request.method in ("GET", "HEAD")
        else "This form could not be read. Go back and try again.",
        503: "The database cannot be reached right now. Try again in a moment.",
    }
    return error_page(request, status, titles.get(status, "Error"), messages.get(status, ""))


def too_large(request: Request, most: int) -> Response:
    """A form post over the body limit (see http/body_limit.py): the limit, and the way
    back to the form (the browser sends the form's address as the referrer)."""
    size = f"{most / 1_048_576:.0f} MiB" if most >= 1_048_576 else f"{most // 1024:,} KiB"
    message = (
        f"This form sent more than the {size} ({most:,} bytes) a form may hold. Shorten "
        f"the longest field (instructions hold up to {text_bounds.INSTRUCTIONS_CHARS:,} "
        "characters) and send it again."
    )
    return error_page(request, 413, "Form too large", message, back=_form_of(request))


def _form_of(request: Request) -> str:
    """The page the post came from: its same-site referrer, else the nearest page above
    the post's own path."""
    referrer = urlsplit(request.headers.get("referer", ""))
    local = referrer.path.startswith("/") and not referrer.path.startswith("//")
    if local and "\\" not in referrer.path and referrer.netloc == request.url.netloc:
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    path = request.url.path
    while path not in ("", "/"):
        probe = {**request.scope, "method": "GET", "path": path}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            return path
        path = path.rsplit("/", 1)[0]
    return "/"
