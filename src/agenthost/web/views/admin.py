"""Admin: users (create, disable, role), balances, role permissions, health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from anyio import to_thread
from fastapi import APIRouter
from starlette.responses import Response

from agenthost import text_bounds
from agenthost.auth.passwords import hash_password
from agenthost.errors import InvalidRequest
from agenthost.storage.models import Transaction, User
from agenthost.storage.repositories import accounts, balances, role_permissions
from agenthost.storage.repositories import users as user_repo
from agenthost.web import health
from agenthost.web.context import AdminDep, FormDep, Visit, redirect, render
from agenthost.web.context import field as form_field
from agenthost.web.errors import WebError, not_found

router = APIRouter()
PERMISSION_NAMES = ("use", "create", "share", "public")
MAX_GRANT = 10**12


@router.get("/admin")
async def admin_home(visit: AdminDep) -> Response:
    return redirect(visit, "/admin/users")


@dataclass(slots=True)
class NewUser:
    """The add-a-user form as typed (never the password), and its field errors."""

    email: str = ""
    role: str = "user"
    errors: dict[str, str] = field(default_factory=dict)


async def _users_page(
    visit: Visit,
    error: str | None = None,
    new_user: NewUser | None = None,
) -> Response:
    async with visit.services.db.session() as session:
        users = await user_repo.list_all(session)
        credits = await accounts.all_credits(session)
    failed = error is not None or (new_user is not None and bool(new_user.errors))
    return render(
        visit,
        "admin_users.html",
        status=400 if failed else 200,
        users=users,
        credits=credits,
        roles=user_repo.ROLES,
        error=error,
        new_user=new_user or NewUser(),
    )


@router.get("/admin/users")
async def users_page(visit: AdminDep) -> Response:
    return await _users_page(visit)


def _check_new_user(email: str, role: str, password: str) -> NewUser:
    typed = NewUser(email=email, role=role)
    checks: tuple[tuple[str, Callable[[str], str], str], ...] = (
        ("email", text_bounds.check_email, email),
        ("password", text_bounds.check_password, password),
    )
    for name, check, value in checks:
        try:
            check(value)
        except InvalidRequest as exc:
            typed.errors[name] = exc.message
    if role not in user_repo.ROLES:
        typed.errors["role"] = "Choose a role from the list."
    return typed


@router.post("/admin/users")
async def create_user(visit: AdminDep, form: FormDep) -> Response:
    raw = form.get("password")  # not stripped: spaces may be part of a password
    password = raw if isinstance(raw, str) else ""
    email, role = form_field(form, "email"), form_field(form, "role")
    typed = _check_new_user(email, role, password)
    if typed.errors:
        return await _users_page(visit, new_user=typed)
    hashed = await to_thread.run_sync(hash_password, password)
    async with visit.services.db.session() as session:
        if await user_repo.get_by_email(session, email) is not None:
            typed.errors["email"] = f"A user with the email {email.lower()} already exists."
            return await _users_page(visit, new_user=typed)
        user = await user_repo.create(session, email, role=role, password_hash=hashed)
        await balances.ensure(session, user.id, visit.services.settings.balance.start_balance)
    return redirect(visit, "/admin/users?notice=created")


async def _other_user(visit: Visit, user_id: str) -> User:
    async with visit.services.db.session() as session:
        user = await user_repo.get(session, user_id)
    if user is None or user.deleted_at is not None:
        raise not_found("user")
    return user


def _not_self(visit: Visit, user: User) -> None:
    if user.id == visit.me.id:
        raise WebError(400, "Not allowed", "You cannot disable or demote your own account.")


@router.post("/admin/users/{user_id}/role")
async def change_role(user_id: str, visit: AdminDep, form: FormDep) -> Response:
    user = await _other_user(visit, user_id)
    _not_self(visit, user)
    role = form_field(form, "role")
    if role not in user_repo.ROLES:
        return await _users_page(visit, "Choose a role from the list.")
    async with visit.services.db.session() as session:
        await accounts.set_role(session, user.id, role)
    visit.services.keys.invalidate(user_id=user.id)
    visit.services.access.invalidate()
    return redirect(visit, "/admin/users?notice=saved")


@router.post("/admin/users/{user_id}/disabled")
async def set_disabled(user_id: str, visit: AdminDep, form: FormDep) -> Response:
    user = await _other_user(visit, user_id)
    _not_self(visit, user)
    async with visit.services.db.session() as session:
        await accounts.set_disabled(session, user.id, form_field(form, "disabled") == "1")
    visit.services.keys.invalidate(user_id=user.id)
    if form_field(form, "disabled") == "1":
        await visit.services.web_sessions.end_all(user.id)  # signed out at once
    return redirect(visit, "/admin/users?notice=saved")


@router.post("/admin/users/{user_id}/credits")
async def grant_credits(user_id: str, visit: AdminDep, form: FormDep) -> Response:
    user = await _other_user(visit, user_id)
    try:
        amount = int(form_field(form, "credits"))
    except ValueError:
        amount = 0
    if amount == 0 or abs(amount) > MAX_GRANT:
        return await _users_page(visit, "Credits must be a whole, non-zero number.")
    try:
        note = text_bounds.check_note(form_field(form, "note")) or f"granted by {visit.me.email}"
    except InvalidRequest as exc:
        return await _users_page(visit, exc.message)
    async with visit.services.db.session() as session:
        await balances.ensure(session, user.id, visit.services.settings.balance.start_balance)
        await balances.apply(
            session, Transaction(user_id=user.id, kind="grant", credits=amount, note=note)
        )
    visit.services.meter.forget(user.id)
    return redirect(visit, "/admin/users?notice=granted")


@router.get("/admin/permissions")
async def permissions_page(visit: AdminDep) -> Response:
    await visit.services.access.refresh_overrides(force=True)
    roles = [r for r in user_repo.ROLES if r != "admin"]
    current = {r: visit.services.access.role_permissions(r) for r in roles}
    return render(
        visit, "admin_permissions.html", roles=roles, current=current, names=PERMISSION_NAMES
    )


@router.post("/admin/permissions")
async def save_permissions(visit: AdminDep, form: FormDep) -> Response:
    async with visit.services.db.session() as session:
        for role in (r for r in user_repo.ROLES if r != "admin"):
            chosen = {n: form.get(f"{role}.{n}") == "on" for n in PERMISSION_NAMES}
            await role_permissions.put(session, role, **chosen)
    await visit.services.access.refresh_overrides(force=True)
    visit.services.access.invalidate()
    return redirect(visit, "/admin/permissions?notice=saved")


@router.get("/admin/health")
async def health_page(visit: AdminDep) -> Response:
    providers, servers = await health.check_all(visit.services)
    return render(visit, "admin_health.html", providers=providers, servers=servers)
