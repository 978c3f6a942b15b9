"""Admin: one user's account page, resetting their password and deleting them.

A reset sets a temporary password, shown once to the admin (post/redirect/get through a
sealed cookie, web/reveal.py), and signs the user out everywhere. A temporary password
rather than a one-time link: agenthost sends no email, so a link would also have to be
handed over by the admin, and a password needs no page open to signed-out visitors.
"""

from __future__ import annotations

import secrets

from anyio import to_thread
from fastapi import APIRouter
from starlette.responses import Response

from agenthost.auth.passwords import hash_password
from agenthost.storage.models import User
from agenthost.storage.repositories import account_removal, accounts
from agenthost.storage.repositories import api_keys as key_repo
from agenthost.storage.repositories import users as user_repo
from agenthost.web import reveal
from agenthost.web.context import AdminDep, FormDep, Visit, redirect, render
from agenthost.web.context import field as form_field
from agenthost.web.errors import WebError, not_found

router = APIRouter()
REVEAL = "temporary password"


async def _user(visit: Visit, user_id: str) -> User:
    async with visit.services.db.session() as session:
        user = await user_repo.get(session, user_id)
    if user is None or user.deleted_at is not None:
        raise not_found("user")
    return user


def _path(user: User) -> str:
    return f"/admin/users/{user.id}"


async def _account_page(visit: Visit, user: User, error: str | None = None) -> Response:
    async with visit.services.db.session() as session:
        agents = await account_removal.owned_agents(session, user.id)
        keys = await key_repo.list_for_user(session, user.id)
        others = [u for u in await user_repo.list_all(session) if u.id != user.id]
    temporary = reveal.take(visit, REVEAL)
    page = render(
        visit,
        "admin_user.html",
        status=400 if error else 200,
        user=user,
        agents=len(agents),
        live_keys=sum(1 for k in keys if k.revoked_at is None),
        others=others,
        temporary=temporary,
        error=error,
    )
    if temporary is not None:
        reveal.forget(page, _path(user))
    return page


@router.get("/admin/users/{user_id}")
async def account_page(user_id: str, visit: AdminDep) -> Response:
    return await _account_page(visit, await _user(visit, user_id))


@router.post("/admin/users/{user_id}/password")
async def reset_password(user_id: str, visit: AdminDep) -> Response:
    user = await _user(visit, user_id)
    temporary = secrets.token_urlsafe(12)  # 16 characters, 96 bits
    hashed = await to_thread.run_sync(hash_password, temporary)
    async with visit.services.db.session() as session:
        await accounts.set_password(session, user, hashed, "user.password_reset")
    response = redirect(visit, _path(user) + "?notice=password_reset")
    reveal.seal(visit, response, REVEAL, _path(user), temporary)
    return response


@router.post("/admin/users/{user_id}/delete")
async def delete_user(user_id: str, visit: AdminDep, form: FormDep) -> Response:
    user = await _user(visit, user_id)
    if user.id == visit.me.id:
        raise WebError(400, "Not allowed", "You cannot delete your own account.")
    choice, target_id = form_field(form, "agents"), form_field(form, "reassign_to")
    if choice not in ("reassign", "delete"):
        return await _account_page(visit, user, "Choose what happens to the user's agents.")
    async with visit.services.db.session() as session:
        target = await user_repo.get(session, target_id) if choice == "reassign" else None
        if choice == "reassign" and (
            target is None or target.deleted_at is not None or target.id == user.id
        ):
            return await _account_page(visit, user, "Choose another user to take the agents.")
        await account_removal.delete_user(session, user, reassign_to=target)
    visit.services.keys.invalidate(user_id=user.id)
    visit.services.access.invalidate()
    return redirect(visit, "/admin/users?notice=user_deleted")
