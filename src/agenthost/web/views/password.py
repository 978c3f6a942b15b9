"""Settings → Password: change your own password (the current one is required and
throttled like sign-in); every other session of yours ends, this browser gets a new one."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter
from starlette.responses import Response

from agenthost import text_bounds
from agenthost.auth.passwords import hash_password, verify_password
from agenthost.errors import InvalidRequest
from agenthost.storage.repositories import accounts
from agenthost.storage.repositories import users as user_repo
from agenthost.web.context import FormDep, UserDep, Visit, redirect, render
from agenthost.web.views.auth import visitor_address

router = APIRouter()
PAGE = "/settings/password"


def _page(visit: Visit, errors: dict[str, str] | None = None, status: int = 200) -> Response:
    has_password = bool(visit.me.password_hash)
    return render(
        visit, "password.html", status=status, errors=errors or {}, has_password=has_password
    )


@router.get(PAGE)
async def password_page(visit: UserDep) -> Response:
    return _page(visit)


def _raw(form: FormDep, name: str) -> str:
    value = form.get(name)  # not stripped: spaces may be part of a password
    return value if isinstance(value, str) else ""


@router.post(PAGE)
async def change_password(visit: UserDep, form: FormDep) -> Response:
    current, new = _raw(form, "current_password"), _raw(form, "new_password")
    errors: dict[str, str] = {}
    try:
        text_bounds.check_password(new)
    except InvalidRequest as exc:
        errors["new_password"] = exc.message
    if new != _raw(form, "confirm_password"):
        errors["confirm_password"] = "The two new passwords differ."
    if len(current) > text_bounds.PASSWORD_MAX_CHARS or not visit.me.password_hash:
        errors["current_password"] = "Wrong current password."
    if errors:
        return _page(visit, errors, 400)
    throttle, address = visit.services.throttle, visitor_address(visit)
    wait = await throttle.admit(visit.me.email, address)
    if wait is not None:
        errors["current_password"] = "Too many failed attempts. Try again later."
        return _page(visit, errors, 429)
    if not await to_thread.run_sync(verify_password, visit.me.password_hash, current):
        return _page(visit, {"current_password": "Wrong current password."}, 400)
    await throttle.succeeded(visit.me.email, address)
    hashed = await to_thread.run_sync(hash_password, new)
    async with visit.services.db.session() as session:
        user = await user_repo.get(session, visit.me.id)
        assert user is not None
        await accounts.set_password(session, user, hashed, "user.password_changed")
    await visit.sign_in(user)  # the old cookie is dead like the others: a fresh session
    return redirect(visit, PAGE + "?notice=password_changed")
