"""Settings → Secrets for tools: set, replace and delete your own secrets.

A secret's value is write-only here: pages list names and dates, never values, and a
form that fails is shown again without the value typed into it.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from agenthost.errors import InvalidRequest
from agenthost.runtime.mcp_headers import servers_by_secret
from agenthost.web.context import FormDep, UserDep, Visit, field, redirect, render
from agenthost.web.errors import forbidden, not_found

router = APIRouter()
PAGE = "/settings/secrets"


def _require_use(visit: Visit) -> None:
    if not visit.perms.use:
        raise forbidden("Remote agent access is not enabled for your role.")


async def secrets_page(visit: Visit, error: str | None = None) -> Response:
    secrets = await visit.services.user_secrets.describe(visit.me.id)
    wanted = servers_by_secret(
        visit.services.settings.mcp_servers, exclude={s.name for s in secrets}
    )
    return render(
        visit,
        "secrets.html",
        status=400 if error else 200,
        error=error,
        secrets=secrets,
        wanted_secrets=wanted,
    )


@router.get(PAGE)
async def show_secrets(visit: UserDep) -> Response:
    _require_use(visit)
    return await secrets_page(visit)


@router.post("/settings/secrets")
async def set_secret(visit: UserDep, form: FormDep) -> Response:
    _require_use(visit)
    raw = form.get("value")
    value = raw if isinstance(raw, str) else ""
    try:
        await visit.services.user_secrets.put(visit.me.id, field(form, "name"), value)
    except InvalidRequest as exc:
        return await secrets_page(visit, error=exc.message)
    return redirect(visit, f"{PAGE}?notice=saved")


@router.post("/settings/secrets/{name}/delete")
async def delete_secret(name: str, visit: UserDep) -> Response:
    _require_use(visit)
    if not await visit.services.user_secrets.delete(visit.me.id, name):
        raise not_found("secret")
    return redirect(visit, f"{PAGE}?notice=deleted")
