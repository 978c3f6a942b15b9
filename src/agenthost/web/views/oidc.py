"""Sign-in through the identity provider: `/auth/oidc/start` sends the browser there,
`/auth/oidc/callback` takes it back (see auth/oidc_sign_in.py)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from agenthost.auth.oidc_sign_in import OidcSignIn, SignInRefused
from agenthost.errors import IdentityProviderUnavailable
from agenthost.http.client_address import is_secure, trusted_of
from agenthost.web.context import Visit, VisitDep, redirect, render
from agenthost.web.errors import WebError
from agenthost.web.sign_in_audit import record_sign_in
from agenthost.web.views.auth import login_context, safe_next, visitor_address

router = APIRouter()

FLOW_COOKIE = "agenthost_oidc_flow"
CALLBACK = "/auth/oidc/callback"


def _sign_in(visit: Visit) -> OidcSignIn:
    found = visit.services.oidc_sign_in
    if found is None:
        raise WebError(404, "Not found", "Single sign-on is not configured.")
    return found


def _redirect_uri(visit: Visit) -> str:
    root = visit.services.settings.public_base_url or str(visit.request.base_url)
    return root.rstrip("/") + CALLBACK


def _refused(visit: Visit, message: str, status: int = 400) -> Response:
    page = render(visit, "login.html", status=status, **login_context(visit, "/agents", message))
    page.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
    return page


@router.get("/auth/oidc/start")
async def start(visit: VisitDep, next: str | None = None) -> Response:
    sign_in = _sign_in(visit)
    try:
        url, sealed = await sign_in.begin(_redirect_uri(visit), safe_next(next))
    except (IdentityProviderUnavailable, SignInRefused):
        return _refused(visit, "The identity provider cannot be reached. Try again.", 503)
    response = visit.finish(RedirectResponse(url, status_code=303))
    response.set_cookie(
        FLOW_COOKIE,
        sealed,
        max_age=600,
        path="/auth/oidc",
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=is_secure(visit.request, trusted_of(visit.request)),
    )
    return response


@router.get(CALLBACK)
async def callback(
    visit: VisitDep,
    code: str = "",
    state: str = "",
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    sign_in = _sign_in(visit)
    if error is not None:
        detail = (error_description or error)[:200]
        return _refused(visit, f"The identity provider did not sign you in: {detail}")
    address = visitor_address(visit)
    sealed = visit.request.cookies.get(FLOW_COOKIE)
    try:
        done = await sign_in.finish(_redirect_uri(visit), sealed, code[:4096], state[:512])
    except SignInRefused as refused:
        await record_sign_in(visit.services, "", None, address, ok=False, method="oidc")
        return _refused(visit, refused.message)
    except IdentityProviderUnavailable:
        return _refused(visit, "The identity provider cannot be reached. Try again.", 503)
    if done.role_changed:
        visit.services.keys.invalidate(user_id=done.user.id)
    if done.role_changed or done.groups_changed:
        visit.services.access.invalidate(user_id=done.user.id)
    user = done.user
    await record_sign_in(visit.services, user.email, user, address, ok=True, method="oidc")
    await visit.sign_in(user)
    response = redirect(visit, safe_next(done.next))
    response.delete_cookie(FLOW_COOKIE, path="/auth/oidc")
    return response
