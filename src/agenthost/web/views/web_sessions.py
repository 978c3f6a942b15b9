"""Settings → Sessions: where you are signed in, and signing out elsewhere or everywhere."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.auth.sessions import session_id
from agenthost.web.context import UserDep, redirect, render
from agenthost.web.errors import not_found

router = APIRouter()
PAGE = "/settings/sessions"


@router.get(PAGE)
async def sessions_page(visit: UserDep) -> Response:
    rows = await visit.services.web_sessions.of_user(visit.me.id)
    return render(visit, "sessions.html", sessions=rows, current=session_id(visit.session))


@router.post(PAGE + "/{row_id}/end")
async def end_session(row_id: str, visit: UserDep) -> Response:
    if row_id == session_id(visit.session):
        await visit.sign_out()
        return redirect(visit, "/login?notice=signed_out")
    if not await visit.services.web_sessions.end_one(visit.me.id, row_id):
        raise not_found("session")
    return redirect(visit, f"{PAGE}?notice=session_ended")


@router.post(PAGE + "/end-all")
async def end_all_sessions(visit: UserDep) -> Response:
    await visit.services.web_sessions.end_all(visit.me.id)
    await visit.sign_out()
    return redirect(visit, "/login?notice=signed_out_everywhere")
