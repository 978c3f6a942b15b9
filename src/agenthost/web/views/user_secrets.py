"""Settings → secrets for tool servers: set, replace and delete your own secrets.

A secret's value is write-only here: pages list names and dates, never values, and a
form that fails is shown again without the value typed into it.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.errors import InvalidRequest
from agenthost.web.context import FormDep, UserDep, Visit, field, redirect
from agenthost.web.errors import forbidden, not_found
from agenthost.web.views.keys import settings_page

router = APIRouter()
PAGE = "/settings/keys"


def _require_use(visit: Visit) -> None:
    if not visit.perms.use:
        raise forbidden("Remote agent access is not enabled for your role.")


@router.post("/settings/secrets")
async def set_secret(visit: UserDep, form: FormDep) -> Response:
    _require_use(visit)
    raw = form.get("value")
    value = raw if isinstance(raw, str) else ""
    try:
        await visit.services.user_secrets.put(visit.me.id, field(form, "name"), value)
    except InvalidRequest as exc:
        return await settings_page(visit, error=exc.message)
    return redirect(visit, f"{PAGE}?notice=saved#secrets")


@router.post("/settings/secrets/{name}/delete")
async def delete_secret(name: str, visit: UserDep) -> Response:
    _require_use(visit)
    if not await visit.services.user_secrets.delete(visit.me.id, name):
        raise not_found("secret")
    return redirect(visit, f"{PAGE}?notice=deleted#secrets")
