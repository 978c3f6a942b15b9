"""Admin: groups of users (create, delete, add and remove members) for sharing agents."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from agenthost.errors import InvalidRequest
from agenthost.storage.models import Group
from agenthost.storage.repositories import groups
from agenthost.storage.repositories import users as user_repo
from agenthost.web.context import AdminDep, FormDep, Visit, field, redirect, render
from agenthost.web.errors import WebError, not_found

router = APIRouter()
PAGE = "/admin/groups"


async def _page(visit: Visit, error: str | None = None) -> Response:
    async with visit.services.db.session() as session:
        listed = await groups.list_all(session)
        emails = [u.email for u in await user_repo.list_all(session)]
    return render(
        visit,
        "admin_groups.html",
        status=400 if error else 200,
        groups=listed,
        emails=emails,
        max_name=groups.MAX_NAME,
        error=error,
    )


async def _group(visit: Visit, group_id: str) -> Group:
    async with visit.services.db.session() as session:
        group = await groups.get(session, group_id)
    if group is None:
        raise not_found("group")
    return group


@router.get(PAGE)
async def groups_page(visit: AdminDep) -> Response:
    return await _page(visit)


@router.post(PAGE)
async def create_group(visit: AdminDep, form: FormDep) -> Response:
    try:
        async with visit.services.db.session() as session:
            await groups.create(session, field(form, "name"))
    except InvalidRequest as exc:
        return await _page(visit, _sentence(exc.message))
    return redirect(visit, f"{PAGE}?notice=created")


@router.post(PAGE + "/{group_id}/delete")
async def delete_group(group_id: str, visit: AdminDep) -> Response:
    group = await _group(visit, group_id)
    async with visit.services.db.session() as session:
        members = await groups.member_ids(session, group.id)
        await groups.delete_group(session, group)
    for user_id in members:
        visit.services.access.invalidate(user_id=user_id)
    return redirect(visit, f"{PAGE}?notice=deleted")


@router.post(PAGE + "/{group_id}/members")
async def add_member(group_id: str, visit: AdminDep, form: FormDep) -> Response:
    group = await _group(visit, group_id)
    email = field(form, "email")
    try:
        async with visit.services.db.session() as session:
            user = await user_repo.get_by_email(session, email)
            if user is None:
                raise InvalidRequest(f"No user has the email {email[:320]!r}.")
            await groups.add_member(session, group, user)
    except InvalidRequest as exc:
        return await _page(visit, _sentence(exc.message))
    except IntegrityError:  # another admin deleted the group meanwhile
        raise WebError(404, "Group not found", "The group was deleted meanwhile.") from None
    visit.services.access.invalidate(user_id=user.id)
    return redirect(visit, f"{PAGE}?notice=saved")


@router.post(PAGE + "/{group_id}/members/remove")
async def remove_member(group_id: str, visit: AdminDep, form: FormDep) -> Response:
    group = await _group(visit, group_id)
    try:
        async with visit.services.db.session() as session:
            user = await user_repo.get(session, field(form, "user_id"))
            if user is None:
                raise not_found("user")
            await groups.remove_member(session, group, user)
    except InvalidRequest as exc:
        return await _page(visit, _sentence(exc.message))
    visit.services.access.invalidate(user_id=user.id)
    return redirect(visit, f"{PAGE}?notice=saved")


def _sentence(message: str) -> str:
    """A domain message as a sentence for the page."""
    text = message[:1].upper() + message[1:]
    return text if text.endswith(".") else text + "."
