"""Sign-in and sign-out."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter
from starlette.responses import Response

from agenthost.auth.passwords import verify_password
from agenthost.http.client_address import client_address, trusted_of
from agenthost.storage.repositories import users as user_repo
from agenthost.web.context import FormDep, Visit, VisitDep, field, redirect, render
from agenthost.web.sign_in_audit import record_sign_in

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only local paths: never let `next` send someone to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/agents"


def _address(visit: Visit) -> str:
    return client_address(visit.request, trusted_of(visit.request))


@router.get("/")
async def home(visit: VisitDep) -> Response:
    return redirect(visit, "/agents" if visit.user else "/login")


@router.get("/login")
async def login_page(visit: VisitDep, next: str | None = None) -> Response:
    if visit.user is not None:
        return redirect(visit, _safe_next(next))
    return render(visit, "login.html", next=_safe_next(next), email="", error=None)


@router.post("/login")
async def login(visit: VisitDep, form: FormDep) -> Response:
    email, password = field(form, "email").lower(), form.get("password")
    target = _safe_next(field(form, "next"))
    address = _address(visit)
    throttle = visit.services.login_throttle
    wait = await throttle.admit(email, address)  # counted before the password is checked
    if wait is not None:
        minutes = int(wait // 60) + 1
        error = f"Too many failed attempts. Try again in about {minutes} minutes."
        return render(visit, "login.html", status=429, next=target, email=email, error=error)
    async with visit.services.db.session() as session:
        user = await user_repo.get_by_email(session, email)
    hashed = user.password_hash if user and not user.disabled else None
    ok = await to_thread.run_sync(verify_password, hashed, str(password or ""))
    if not ok or user is None:
        await record_sign_in(visit.services, email, user, address, ok=False)
        error = "Wrong email or password."
        return render(visit, "login.html", status=400, next=target, email=email, error=error)
    await throttle.succeeded(email, address)
    await record_sign_in(visit.services, email, user, address, ok=True)
    await visit.sign_in(user)
    return redirect(visit, target)


@router.post("/logout")
async def logout(visit: VisitDep) -> Response:
    await visit.sign_out()
    return redirect(visit, "/login?notice=signed_out")
