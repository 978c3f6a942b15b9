"""Sign-in and sign-out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from anyio import to_thread
from fastapi import APIRouter
from starlette.responses import Response

from agenthost import text_bounds
from agenthost.auth.passwords import verify_password
from agenthost.http.client_address import client_address, trusted_of
from agenthost.storage.repositories import users as user_repo
from agenthost.web.context import FormDep, Visit, VisitDep, field, redirect, render
from agenthost.web.sign_in_audit import record_sign_in

router = APIRouter()


def safe_next(target: str | None) -> str:
    """Only local paths: never let `next` send someone to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/agents"


def visitor_address(visit: Visit) -> str:
    return client_address(visit.request, trusted_of(visit.request))


def display_name(visit: Visit) -> str | None:
    """What the sign-in button names, or None when there is no OIDC sign-in."""
    oidc = visit.services.settings.auth.oidc
    if oidc is None or visit.services.oidc_sign_in is None:
        return None
    return oidc.display_name or urlsplit(oidc.issuer).hostname or "single sign-on"


def login_context(visit: Visit, target: str, error: str | None, email: str = "") -> dict[str, Any]:
    """What the sign-in page shows: the password form unless turned off, and the single
    sign-on button when configured."""
    return {
        "next": target,
        "email": email,
        "error": error,
        "password_login": visit.services.settings.auth.password_login,
        "sso_name": display_name(visit),
    }


def _plausible(email: str, password: object) -> bool:
    return len(email) <= text_bounds.EMAIL_CHARS and (
        not isinstance(password, str) or len(password) <= text_bounds.PASSWORD_MAX_CHARS
    )


@router.get("/")
async def home(visit: VisitDep) -> Response:
    return redirect(visit, "/agents" if visit.user else "/login")


@router.get("/login")
async def login_page(visit: VisitDep, next: str | None = None) -> Response:
    if visit.user is not None:
        return redirect(visit, safe_next(next))
    return render(visit, "login.html", **login_context(visit, safe_next(next), None))


@router.post("/login")
async def login(visit: VisitDep, form: FormDep) -> Response:
    email, password = field(form, "email").lower(), form.get("password")
    target = safe_next(field(form, "next"))
    if not visit.services.settings.auth.password_login:
        error = "Password sign-in is turned off here: use single sign-on."
        return render(visit, "login.html", status=403, **login_context(visit, target, error))
    if not _plausible(email, password):
        # No account has such an email or password: refused before the throttle counts
        # it (its keys stay small) and before a megabyte is hashed.
        error = "Wrong email or password."
        email = email[: text_bounds.EMAIL_CHARS]
        page = login_context(visit, target, error, email)
        return render(visit, "login.html", status=400, **page)
    address = visitor_address(visit)
    throttle = visit.services.throttle
    wait = await throttle.admit(email, address)  # counted before the password is checked
    if wait is not None:
        minutes = int(wait // 60) + 1
        error = f"Too many failed attempts. Try again in about {minutes} minutes."
        page = login_context(visit, target, error, email)
        return render(visit, "login.html", status=429, **page)
    async with visit.services.db.session() as session:
        user = await user_repo.get_by_email(session, email)
    hashed = user.password_hash if user and not user.disabled else None
    ok = await to_thread.run_sync(verify_password, hashed, str(password or ""))
    if not ok or user is None:
        await record_sign_in(visit.services, email, user, address, ok=False)
        error = "Wrong email or password."
        page = login_context(visit, target, error, email)
        return render(visit, "login.html", status=400, **page)
    await throttle.succeeded(email, address)
    await record_sign_in(visit.services, email, user, address, ok=True)
    await visit.sign_in(user)
    return redirect(visit, target)


@router.post("/logout")
async def logout(visit: VisitDep) -> Response:
    await visit.sign_out()
    return redirect(visit, "/login?notice=signed_out")
