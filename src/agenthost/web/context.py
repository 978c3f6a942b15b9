"""Per-request state of a web page: the session, the signed-in user, rendering helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from agenthost.auth import sessions
from agenthost.auth.permissions import RolePermissions
from agenthost.auth.principal import Principal
from agenthost.http.client_address import client_address, is_secure, trusted_of
from agenthost.services import Services
from agenthost.storable import problem
from agenthost.storage.models import User
from agenthost.storage.repositories import audit
from agenthost.web import templating
from agenthost.web.errors import LoginRequired, WebError, forbidden
from agenthost.web.security_headers import protect

NOTICES = {
    "saved": "Saved.",
    "created": "Created.",
    "deleted": "Deleted.",
    "revoked": "The key was revoked. It stops working at once.",
    "duplicated": "Agent duplicated. You are editing the copy.",
    "granted": "Credits granted.",
    "signed_out": "You are signed out.",
    "session_ended": "That session is signed out.",
    "signed_out_everywhere": "You are signed out everywhere, this browser included.",
    "password_changed": "Password changed. Your other sessions are signed out.",
    "password_reset": "Password reset. The user's sessions are signed out.",
    "user_deleted": "The user was deleted. Their keys are revoked; the ledger is kept.",
}


@dataclass(slots=True)
class Visit:
    """One page view: who is signed in and whether the session cookie must be (re)sent."""

    request: Request
    services: Services
    codec: sessions.SessionCodec
    session: sessions.SessionData
    user: User | None
    fresh: bool

    @property
    def csrf(self) -> str:
        return self.codec.csrf_token(self.session)

    @property
    def me(self) -> User:
        if self.user is None:
            raise LoginRequired()
        return self.user

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.role == "admin"

    @property
    def perms(self) -> RolePermissions:
        role = self.user.role if self.user else "anonymous"
        return self.services.access.role_permissions(role)

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.me.id, email=self.me.email, role=self.me.role)

    async def sign_in(self, user: User) -> None:
        self.session, self.user, self.fresh = sessions.new_session(user.id), user, True
        await self.services.web_sessions.start(
            self.session,
            address=client_address(self.request, trusted_of(self.request)),
            user_agent=self.request.headers.get("user-agent", ""),
        )

    async def sign_out(self) -> None:
        if self.user is not None:
            await self.services.web_sessions.end(self.session)
        self.session, self.user, self.fresh = sessions.new_session(), None, True

    def finish(self, response: Response) -> Response:
        if self.fresh:
            response.set_cookie(
                sessions.COOKIE_NAME,
                self.codec.encode(self.session),
                **sessions.cookie_options(
                    is_secure(self.request, trusted_of(self.request)),
                    self.codec.max_age,
                ),
            )
        response.headers.setdefault("cache-control", "no-store")
        return protect(response, self.services.settings.public_base_url)


async def current_visit(request: Request) -> Visit:
    cached = getattr(request.state, "visit", None)
    if isinstance(cached, Visit):
        return cached
    services: Services = request.app.state.services
    codec = sessions.codec_for(request.app.state)
    data = codec.decode(request.cookies.get(sessions.COOKIE_NAME))
    fresh = data is None
    user = None
    if data is not None and data.user_id is not None:
        user = await services.web_sessions.user_of(data)
        if user is None:  # ended, expired, idle too long, or the user is disabled
            data = None
    if data is None:
        data, fresh = sessions.new_session(), True
    await services.access.refresh_overrides()
    visit = Visit(request, services, codec, data, user, fresh)
    request.state.visit = visit
    if user is not None:
        audit.set_actor(user.email)  # this request's changes are theirs
    return visit


async def csrf_guard(request: Request) -> None:
    """Router-wide: every POST must carry the session's CSRF token (field or header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    visit = await current_visit(request)
    form = await request.form()  # Starlette caches it for the view
    token = form.get(sessions.CSRF_FIELD) or request.headers.get(sessions.CSRF_HEADER)
    if not visit.codec.csrf_ok(visit.session, token if isinstance(token, str) else None):
        raise WebError(
            403,
            "Form expired",
            "The security token of this form is missing or out of date. "
            "Reload the page and try again.",
        )


async def signed_in(request: Request) -> Visit:
    visit = await current_visit(request)
    if visit.user is None:
        raise LoginRequired()
    return visit


async def admin_only(request: Request) -> Visit:
    visit = await signed_in(request)
    if not visit.is_admin:
        raise forbidden("Only administrators can open this page.")
    return visit


VisitDep = Annotated[Visit, Depends(current_visit)]
UserDep = Annotated[Visit, Depends(signed_in)]
AdminDep = Annotated[Visit, Depends(admin_only)]


async def form_of(request: Request) -> FormData:
    form = await request.form()
    for name, value in form.multi_items():
        found = problem(value) if isinstance(value, str) else None
        if found is not None:
            raise WebError(400, "Invalid input", f"The field '{name[:64]}' {found}.")
    return form


FormDep = Annotated[FormData, Depends(form_of)]


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


def render(visit: Visit, template: str, status: int = 200, **context: Any) -> Response:
    notice = NOTICES.get(visit.request.query_params.get("notice", ""))
    response = templating.templates().TemplateResponse(
        visit.request,
        template,
        {"visit": visit, "notice": notice, **context},
        status_code=status,
    )
    return visit.finish(response)


def redirect(visit: Visit, url: str) -> Response:
    return visit.finish(RedirectResponse(url, status_code=303))
